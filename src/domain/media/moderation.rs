//! The optional moderation hook: a classifier told each new photo's small
//! size, whose verdict hides a photo from everyone but its owner. None by
//! default; `KITH_MEDIA_MODERATION_URL` names an HTTP one.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Media, Processed};

/// How long a classifier may take before the photo is kept hidden.
const CLASSIFIER_TIMEOUT: Duration = Duration::from_secs(10);
/// The long side of the size sent to the classifier (the smallest stored at
/// least this long).
const CLASSIFIED_SIDE: u32 = 160;

/// Judges a photo.
#[async_trait]
pub trait Moderator: Send + Sync + 'static {
    /// Whether the image (a JPEG) should be hidden from everyone but its owner.
    async fn flags(&self, jpeg: Bytes) -> anyhow::Result<bool>;
}

/// A classifier over HTTP: `POST <url>` with the JPEG as the body
/// (`Content-Type: image/jpeg`), answered `2xx` with `{"flagged": true|false}`.
pub struct HttpModerator {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl HttpModerator {
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url)?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "not an http:// or https:// URL"
        );
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(CLASSIFIER_TIMEOUT)
                .build()?,
            url,
        })
    }
}

#[derive(serde::Deserialize)]
struct Verdict {
    flagged: bool,
}

#[async_trait]
impl Moderator for HttpModerator {
    async fn flags(&self, jpeg: Bytes) -> anyhow::Result<bool> {
        let verdict: Verdict = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "image/jpeg")
            .body(jpeg)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(verdict.flagged)
    }
}

impl Media {
    /// Whether a new photo is to be hidden: the classifier's verdict, or
    /// hidden when it did not give one (failing closed: a dating app shows
    /// no unchecked photo; the owner sees it and may upload again).
    pub(super) async fn moderate(&self, processed: &Processed) -> bool {
        let Some(moderator) = &self.moderator else {
            return false;
        };
        let small = processed.variant_for(CLASSIFIED_SIDE).bytes.clone();
        match moderator.flags(small).await {
            Ok(flagged) => flagged,
            Err(err) => {
                tracing::warn!(error = %err, "the moderation classifier gave no verdict; the photo stays hidden");
                true
            }
        }
    }
}
