//! Small objects kept in memory in front of the media store: the thumbnails
//! every list and chat screen asks for, served without a blocking read from
//! disk (or a round trip to S3) each time.
//!
//! Keys name their content, so a cached object is never stale while it
//! exists. A delete drops it here at once; another replica's copy lives at
//! most [`LIFETIME`], so a deleted photo may still be served there for that
//! long to someone who holds a URL that was handed out before the delete.

use std::{ops::Range, sync::Arc, time::Duration};

use async_trait::async_trait;
use bytes::Bytes;
use moka::sync::Cache;

use super::media_store::{
    MediaKey, MediaMeta, MediaPrefix, MediaStore, MediaStoreError, StoredMedia,
};

/// Largest object kept: a 160 px thumbnail is 5 to 15 KB, a 640 px image
/// 40 to 120 KB; larger sizes are read each time.
const LARGEST_KEPT: u64 = 128 * 1024;
/// Bytes kept in all.
const CAPACITY: u64 = 64 * 1024 * 1024;
/// How long a copy lives (see the module's notes on deletes).
const LIFETIME: Duration = Duration::from_secs(60);

/// A [`MediaStore`] with a memory of its small objects.
pub struct CachedMediaStore {
    inner: Arc<dyn MediaStore>,
    kept: Cache<MediaKey, StoredMedia>,
}

impl CachedMediaStore {
    pub fn new(inner: Arc<dyn MediaStore>) -> Self {
        Self {
            inner,
            kept: Cache::builder()
                .max_capacity(CAPACITY)
                .weigher(|_, stored: &StoredMedia| {
                    u32::try_from(stored.bytes.len()).unwrap_or(u32::MAX)
                })
                .time_to_live(LIFETIME)
                .support_invalidation_closures()
                .build(),
        }
    }
}

#[async_trait]
impl MediaStore for CachedMediaStore {
    async fn put(
        &self,
        key: &MediaKey,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), MediaStoreError> {
        self.inner.put(key, bytes, content_type).await
    }

    async fn get(&self, key: &MediaKey) -> Result<StoredMedia, MediaStoreError> {
        if let Some(stored) = self.kept.get(key) {
            return Ok(stored);
        }
        let stored = self.inner.get(key).await?;
        if stored.size <= LARGEST_KEPT {
            self.kept.insert(key.clone(), stored.clone());
        }
        Ok(stored)
    }

    async fn head(&self, key: &MediaKey) -> Result<MediaMeta, MediaStoreError> {
        match self.kept.get(key) {
            Some(stored) => Ok(MediaMeta {
                size: stored.size,
                content_type: stored.content_type,
                last_modified: stored.last_modified,
            }),
            None => self.inner.head(key).await,
        }
    }

    async fn get_range(&self, key: &MediaKey, range: Range<u64>) -> Result<Bytes, MediaStoreError> {
        if let Some(stored) = self.kept.get(key) {
            let end = range.end.min(stored.size);
            if range.start < end {
                // Within a kept object: no bigger than LARGEST_KEPT, so the
                // bounds fit a usize.
                return Ok(stored.bytes.slice(range.start as usize..end as usize));
            }
        }
        // What the store says of a range it cannot give, or a read.
        self.inner.get_range(key, range).await
    }

    async fn presigned_url(&self, key: &MediaKey, expires_in: Duration) -> Option<String> {
        self.inner.presigned_url(key, expires_in).await
    }

    async fn delete(&self, key: &MediaKey) -> Result<(), MediaStoreError> {
        self.kept.invalidate(key);
        self.inner.delete(key).await
    }

    async fn delete_prefix(&self, prefix: &MediaPrefix) -> Result<usize, MediaStoreError> {
        let removed = self.inner.delete_prefix(prefix).await;
        // After the store: a read racing the delete cannot put back what
        // is gone. Whole segments, as the store counts them.
        let under = format!("{}/", prefix.as_str());
        self.kept
            .invalidate_entries_if(move |key, _| key.as_str().starts_with(&under))
            .expect("the cache supports invalidation closures");
        removed
    }

    fn describe(&self) -> String {
        format!(
            "{}, objects up to {} KiB kept in memory",
            self.inner.describe(),
            LARGEST_KEPT / 1024
        )
    }
}
