//! Posting one event to a webhook receiver, signed the way Stripe signs
//! its webhooks: `Kith-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`, so a receiver checks the body came from kith and, by
//! `t`, refuses a delivery replayed later. What to post and when to retry
//! is the dispatcher's (`domain::outbox`); this knows only HTTP.

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::CONTENT_TYPE;
use sha2::Sha256;

/// How long connecting may take, within the whole request's timeout: a
/// receiver that is down fails fast.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest failure reason kept: enough for a status and its reason
/// phrase, never a whole error page.
const REASON_CHARS: usize = 200;

pub struct WebhookPoster {
    client: reqwest::Client,
    secret: String,
}

impl WebhookPoster {
    pub fn new(secret: &str, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(CONNECT_TIMEOUT.min(timeout))
                // A redirect is a misconfigured URL, not a delivery: reqwest
                // would follow a 301 or 302 with a GET and no body.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("kith-webhooks/", env!("CARGO_PKG_VERSION")))
                .build()?,
            secret: secret.to_owned(),
        })
    }

    /// Posts `body` to `url`; a 2xx within the timeout is delivered, and
    /// anything else the short reason it was not (a status, a timeout, a
    /// refused connection; never the URL's query nor the secret).
    pub async fn post(&self, url: &str, event_id: &str, body: Bytes) -> Result<(), String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let response = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("Kith-Event-Id", event_id)
            .header("Kith-Signature", signature(&self.secret, now, &body))
            .body(body)
            .send()
            .await
            .map_err(|err| why(&err))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(clip(format!("HTTP {status}")))
        }
    }
}

/// `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(secret: &str, t: u64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// reqwest's own message names the whole URL, query included (where a
/// receiver may have put a token): say what kind of failure it was instead.
fn why(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else if err.is_request() || err.is_body() {
        "the request failed"
    } else {
        "no answer"
    };
    // The innermost cause (`connection refused`, `dns error: …`) names no URL.
    let mut cause: &dyn std::error::Error = err;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    clip(if std::ptr::addr_eq(cause, err as &dyn std::error::Error) {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    })
}

fn clip(mut reason: String) -> String {
    if let Some((at, _)) = reason.char_indices().nth(REASON_CHARS) {
        reason.truncate(at);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_over_the_timestamp_and_the_body() {
        // Computed independently: printf '1700000000.{"a":1}' |
        //   openssl dgst -sha256 -hmac whsec_test
        let signed = signature("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            signed,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_ne!(
            signed,
            signature("whsec_test", 1_700_000_001, br#"{"a":1}"#)
        );
        assert_ne!(
            signed,
            signature("whsec_test", 1_700_000_000, br#"{"a":2}"#)
        );
        assert_ne!(signed, signature("other", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn a_long_reason_is_clipped() {
        assert_eq!(clip("x".repeat(500)).len(), REASON_CHARS);
        assert_eq!(clip("HTTP 500".into()), "HTTP 500");
    }
}
