//! The URLs the API hands out for stored media: `/media/<key>?expires=…&sig=…`,
//! signed with a key derived from the server secret, so only someone the API
//! showed the photo or attachment to can fetch it, and only for a while
//! (`KITH_MEDIA_URL_TTL_SECS`).
//!
//! Expiry times are rounded up to a step of a quarter of the lifetime, so a
//! client asking again within that step gets the very same URL and its HTTP
//! cache keeps working; a URL then lives between one and one and a quarter
//! lifetimes.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::{auth::signing_key::derive_key, infra::media_store::MediaKey};

/// Bytes of the HMAC a URL carries: 128 bits, as base64url (22 characters).
const SIGNATURE_LEN: usize = 16;

/// Signs and checks media URLs. Cheap to clone.
#[derive(Clone)]
pub struct MediaUrls {
    key: [u8; 32],
    ttl_secs: i64,
}

/// Why a media URL is refused (each a `403`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefusal {
    #[error("the URL carries no valid signature")]
    BadSignature,
    #[error("the URL has expired")]
    Expired,
}

impl MediaUrls {
    /// `secret` is the server's signing secret; the key used here is derived
    /// from it, so a media URL can never pass for a token or the reverse.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            key: derive_key(secret, "kith media urls"),
            ttl_secs: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).max(1),
        }
    }

    /// The URL (a path on this server) for `key`, valid from now for at
    /// least the configured lifetime.
    pub fn url(&self, key: &MediaKey) -> String {
        self.url_at(key, Utc::now().timestamp())
    }

    /// [`Self::url`] as if it were `now` (seconds since the epoch).
    pub fn url_at(&self, key: &MediaKey, now: i64) -> String {
        let expires = self.expiry_for(now);
        format!(
            "/media/{key}?expires={expires}&sig={}",
            URL_SAFE_NO_PAD.encode(self.signature(key.as_str(), expires))
        )
    }

    /// How long a URL handed out now stays valid, at least: for the
    /// presigned URLs of a store, which take a duration.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.ttl_secs.unsigned_abs())
    }

    /// Whether `signature` (as in the URL) signs `key` until `expires`, and
    /// that time has not passed at `now`. The comparison takes the same time
    /// however many bytes match.
    pub fn check(
        &self,
        key: &str,
        expires: i64,
        signature: &str,
        now: i64,
    ) -> Result<(), UrlRefusal> {
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| UrlRefusal::BadSignature)?;
        if given.len() != SIGNATURE_LEN {
            return Err(UrlRefusal::BadSignature);
        }
        self.mac(key, expires)
            .verify_truncated_left(&given)
            .map_err(|_| UrlRefusal::BadSignature)?;
        // Checked after the signature: an expiry is only meaningful once it
        // is known to be one that kith wrote.
        if expires < now {
            return Err(UrlRefusal::Expired);
        }
        Ok(())
    }

    /// `now + ttl`, rounded up to the next multiple of a quarter of the ttl.
    fn expiry_for(&self, now: i64) -> i64 {
        let step = (self.ttl_secs / 4).max(1);
        let earliest = now.saturating_add(self.ttl_secs);
        earliest
            .div_euclid(step)
            .saturating_add(1)
            .saturating_mul(step)
    }

    fn signature(&self, key: &str, expires: i64) -> [u8; SIGNATURE_LEN] {
        let full = self.mac(key, expires).finalize().into_bytes();
        let mut short = [0; SIGNATURE_LEN];
        short.copy_from_slice(&full[..SIGNATURE_LEN]);
        short
    }

    fn mac(&self, key: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        // The key cannot hold a newline (see `MediaKey::parse`), so the two
        // parts cannot be shifted into one another.
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> MediaUrls {
        MediaUrls::new(b"a server secret of some length", Duration::from_secs(3600))
    }

    fn parts(url: &str) -> (String, i64, String) {
        let (path, query) = url.split_once('?').unwrap();
        let key = path.strip_prefix("/media/").unwrap().to_owned();
        let (expires, sig) = query.split_once('&').unwrap();
        (
            key,
            expires.strip_prefix("expires=").unwrap().parse().unwrap(),
            sig.strip_prefix("sig=").unwrap().to_owned(),
        )
    }

    fn key() -> MediaKey {
        MediaKey::parse("photos/abc/640-0123456789ab.jpg").unwrap()
    }

    #[test]
    fn a_url_it_signed_is_accepted_until_it_expires() {
        let now = 1_800_000_000;
        let (key, expires, sig) = parts(&urls().url_at(&key(), now));
        assert_eq!(key, "photos/abc/640-0123456789ab.jpg");
        assert!(expires >= now + 3600 && expires <= now + 3600 + 900);
        assert_eq!(urls().check(&key, expires, &sig, now), Ok(()));
        assert_eq!(urls().check(&key, expires, &sig, expires), Ok(()));
        assert_eq!(
            urls().check(&key, expires, &sig, expires + 1),
            Err(UrlRefusal::Expired)
        );
    }

    #[test]
    fn urls_asked_for_within_a_step_are_the_same_so_caches_keep_working() {
        let now = 1_800_000_000 / 900 * 900;
        assert_eq!(urls().url_at(&key(), now), urls().url_at(&key(), now + 899));
        assert_ne!(urls().url_at(&key(), now), urls().url_at(&key(), now + 900));
    }

    #[test]
    fn another_key_expiry_secret_or_a_mangled_signature_is_refused() {
        let now = 1_800_000_000;
        let (key, expires, sig) = parts(&urls().url_at(&key(), now));
        let refused = Err(UrlRefusal::BadSignature);
        assert_eq!(
            urls().check("photos/abc/160-0123456789ab.jpg", expires, &sig, now),
            refused
        );
        assert_eq!(urls().check(&key, expires + 1, &sig, now), refused);
        let other = MediaUrls::new(b"another secret", Duration::from_secs(3600));
        assert_eq!(other.check(&key, expires, &sig, now), refused);
        assert_eq!(urls().check(&key, expires, &sig[..20], now), refused);
        assert_eq!(urls().check(&key, expires, "", now), refused);
        assert_eq!(urls().check(&key, expires, "!!!", now), refused);
        let mut flipped = sig.into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            urls().check(&key, expires, &String::from_utf8(flipped).unwrap(), now),
            refused
        );
    }
}
