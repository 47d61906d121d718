//! Media: profile photos and message attachments.
//!
//! - `sniff` and `process`: what an upload is (judged by its bytes), whether
//!   it is accepted (bytes, pixels, a whole image of one of four formats), and
//!   what is kept of it (upright JPEGs in the configured sizes, stripped of
//!   every metadata, and a ThumbHash placeholder).
//! - `urls`: the signed, expiring URLs the API hands out for stored sizes.
//! - `photos` and `attachments`: what uploads become, their rows and rules;
//!   `stored`: how a row names its sizes and how they are put, all or none.
//! - `sweeper`: removes the objects and rows of what was released.
//! - `moderation`: the optional classifier that hides a photo.
//!
//! The bytes live in a [`MediaStore`] (local disk or S3), chosen in `app.rs`.

mod attachments;
mod moderation;
mod photos;
mod process;
mod sniff;
mod stored;
mod sweeper;
#[cfg(test)]
mod tests;
mod urls;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio::sync::Notify;

use crate::{
    config::Settings,
    infra::{
        db::Db,
        media_store::{MediaKey, MediaStore},
    },
};

pub use attachments::{
    Attachment, MAX_ATTACHMENTS_PER_MESSAGE, attach, check_attachment_ids,
    release_message_attachments, unusable,
};
pub use moderation::{HttpModerator, Moderator};
pub use photos::{Photo, shown_to};
pub use stored::{StoredImage, StoredSize};
pub use sweeper::UNSENT_ATTACHMENT_LIFETIME;

pub use process::{
    ImageProcessor, ImageRules, JPEG_QUALITY, OUTPUT_MIME_TYPE, Processed, Source, Variant,
    process_image,
};
pub use sniff::{ImageKind, kind_of, sniff};
pub use urls::{MediaUrls, UrlRefusal};

/// The media service: uploads, the photos and attachments they become, and
/// their URLs. Cheap to clone.
#[derive(Clone)]
pub struct Media {
    db: Db,
    store: Arc<dyn MediaStore>,
    urls: MediaUrls,
    /// Hand out the store's presigned URLs (`KITH_S3_PRESIGNED_URLS`)
    /// rather than kith's own.
    presigned: bool,
    processor: ImageProcessor,
    photos_per_user: u32,
    moderator: Option<Arc<dyn Moderator>>,
    sweep_wanted: Arc<Notify>,
}

impl Media {
    /// `secret` is the server's signing secret (media URLs are signed with a
    /// key derived from it).
    pub fn new(
        db: Db,
        store: Arc<dyn MediaStore>,
        settings: &Settings,
        secret: &[u8],
    ) -> anyhow::Result<Self> {
        let moderator = match settings.media_moderation_url.as_deref() {
            Some(url) => Some(Arc::new(
                HttpModerator::new(url).context("bad setting KITH_MEDIA_MODERATION_URL")?,
            ) as Arc<dyn Moderator>),
            None => None,
        };
        Ok(Self {
            db,
            store,
            urls: MediaUrls::new(secret, Duration::from_secs(settings.media_url_ttl_secs)),
            presigned: settings.s3_presigned_urls,
            processor: ImageProcessor::new(
                ImageRules::from_settings(settings),
                settings.media_concurrency(),
            ),
            photos_per_user: settings.photos_per_user,
            moderator,
            sweep_wanted: Arc::default(),
        })
    }

    /// Where the bytes live.
    pub fn store(&self) -> &Arc<dyn MediaStore> {
        &self.store
    }

    /// Signs and checks the URLs handed out for stored sizes.
    pub fn urls(&self) -> &MediaUrls {
        &self.urls
    }

    /// The URL the API hands out for `key`: the bucket's own presigned URL
    /// when `KITH_S3_PRESIGNED_URLS` is on (clients then fetch from S3 and
    /// kith serves no bytes), else kith's signed `/media/…` URL. Both live
    /// at least the configured lifetime. Should presigning fail (the
    /// store's credentials unavailable for a moment), kith's own URL is
    /// handed out instead: it serves from the same bucket.
    ///
    /// A presigned URL carries the time it was signed, so unlike kith's
    /// (see [`MediaUrls`]) it differs at each call and clients' caches
    /// hold one copy per URL.
    pub async fn url_for(&self, key: &MediaKey) -> String {
        if self.presigned
            && let Some(url) = self.store.presigned_url(key, self.urls.lifetime()).await
        {
            return url;
        }
        self.urls.url(key)
    }
}
