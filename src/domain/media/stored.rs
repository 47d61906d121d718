//! What a stored image is, as its row keeps it: the sizes' keys and
//! dimensions (JSON in the row's `variants`), and how an upload's sizes are
//! put in the store, all or none.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Processed;
use crate::{
    error::{AppError, AppResult},
    infra::media_store::{MediaKey, MediaPrefix, MediaStore},
};

/// One stored size of an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSize {
    pub key: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

impl StoredSize {
    pub fn long_side(&self) -> u32 {
        self.width.max(self.height)
    }

    /// The checked key (a row only ever holds keys kith built).
    pub fn media_key(&self) -> AppResult<MediaKey> {
        MediaKey::parse(&self.key)
            .map_err(|err| AppError::Internal(anyhow::anyhow!("a stored media key: {err}")))
    }
}

/// A photo's or attachment's image: what clients are told of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredImage {
    /// Of the largest stored size.
    pub width: u32,
    pub height: u32,
    pub mime_type: String,
    pub bytes: u64,
    /// ThumbHash, standard base64.
    pub placeholder: String,
    /// Largest first; never empty.
    pub sizes: Vec<StoredSize>,
}

impl StoredImage {
    /// The image a row describes.
    pub fn from_row(
        width: i32,
        height: i32,
        mime_type: &str,
        bytes: i64,
        placeholder: &str,
        variants: &str,
    ) -> AppResult<Self> {
        let sizes: Vec<StoredSize> = serde_json::from_str(variants)
            .map_err(|err| AppError::Internal(anyhow::anyhow!("stored media sizes: {err}")))?;
        if sizes.is_empty() {
            return Err(AppError::Internal(anyhow::anyhow!(
                "a stored image without sizes"
            )));
        }
        Ok(Self {
            width: u32::try_from(width).unwrap_or(0),
            height: u32::try_from(height).unwrap_or(0),
            mime_type: mime_type.to_owned(),
            bytes: u64::try_from(bytes).unwrap_or(0),
            placeholder: placeholder.to_owned(),
            sizes,
        })
    }

    /// The sizes as the row's `variants` column keeps them.
    pub fn variants_json(&self) -> String {
        serde_json::to_string(&self.sizes).expect("sizes serialize")
    }

    /// The size to show for a wanted long side: the smallest at least that
    /// long, or the largest there is.
    pub fn size_for(&self, long_side: u32) -> &StoredSize {
        self.sizes
            .iter()
            .rev()
            .find(|size| size.long_side() >= long_side)
            .unwrap_or(&self.sizes[0])
    }

    /// Row values as SeaORM columns take them.
    pub fn width_i32(&self) -> i32 {
        i32::try_from(self.width).unwrap_or(i32::MAX)
    }

    pub fn height_i32(&self) -> i32 {
        i32::try_from(self.height).unwrap_or(i32::MAX)
    }

    pub fn bytes_i64(&self) -> i64 {
        i64::try_from(self.bytes).unwrap_or(i64::MAX)
    }
}

/// The time rows are stamped with: microseconds, as both databases keep them.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound as _;
    chrono::Utc::now().trunc_subsecs(6)
}

/// Puts every size of `processed` under `prefix`. All or none: when one put
/// fails, what was put is deleted again before the error is returned.
pub async fn put_all(
    store: &dyn MediaStore,
    prefix: &MediaPrefix,
    processed: &Processed,
) -> AppResult<StoredImage> {
    let mut sizes = Vec::with_capacity(processed.variants.len());
    for variant in &processed.variants {
        let put = async {
            let key = MediaKey::content_addressed(
                prefix,
                &variant.long_side().to_string(),
                "jpg",
                &variant.bytes,
            )?;
            store
                .put(&key, Bytes::clone(&variant.bytes), variant.mime_type)
                .await?;
            Ok::<_, crate::infra::media_store::MediaStoreError>(key)
        };
        match put.await {
            Ok(key) => sizes.push(StoredSize {
                key: key.as_str().to_owned(),
                width: variant.width,
                height: variant.height,
                bytes: variant.bytes.len() as u64,
            }),
            Err(err) => {
                remove_quietly(store, prefix).await;
                return Err(store_error(err));
            }
        }
    }
    let largest = processed.largest();
    Ok(StoredImage {
        width: largest.width,
        height: largest.height,
        mime_type: largest.mime_type.to_owned(),
        bytes: largest.bytes.len() as u64,
        placeholder: processed.placeholder.clone(),
        sizes,
    })
}

/// Deletes what is under `prefix`, logging a failure: for undoing a write
/// that failed, where the write's own error is the one to report (and the
/// sweeper, or nobody, will find the rest).
pub async fn remove_quietly(store: &dyn MediaStore, prefix: &MediaPrefix) {
    if let Err(err) = store.delete_prefix(prefix).await {
        tracing::warn!(prefix = prefix.as_str(), error = %err, "could not remove media objects");
    }
}

/// A store that failed: unavailable to the client, logged in full.
pub fn store_error(err: crate::infra::media_store::MediaStoreError) -> AppError {
    tracing::error!(error = %err, "media store failed");
    AppError::unavailable(5, "the media store is unavailable; try again shortly")
}
