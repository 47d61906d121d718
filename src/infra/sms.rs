//! Sending a text message: to the server log (for development) or through
//! Twilio's REST API. Chosen once in `state.rs` from `KITH_SMS_SENDER`.

use std::time::Duration;

use async_trait::async_trait;

/// How long Twilio may take to accept a message before the caller is told
/// to retry: inside a request's execution timeout (10 s by default), so the
/// caller hears why.
const TWILIO_TIMEOUT: Duration = Duration::from_secs(8);

/// Why a message did not go.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The provider refused the number (not a mobile, not reachable, a
    /// country the account may not send to).
    #[error("the provider refused the number")]
    Refused,
    /// The provider failed, timed out or could not be reached: retry later.
    #[error("the SMS provider is unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    /// Sends `body` to `to`, an E.164 number.
    async fn send(&self, to: &str, body: &str) -> Result<(), SmsError>;
}

/// Writes each message to the server log instead of sending it: the default,
/// so sign-in by SMS works on a developer's machine with no provider.
pub struct LogSender;

#[async_trait]
impl SmsSender for LogSender {
    async fn send(&self, to: &str, body: &str) -> Result<(), SmsError> {
        tracing::info!(to, body, "SMS (KITH_SMS_SENDER=log: not sent)");
        Ok(())
    }
}

/// Twilio's Programmable Messaging: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`
/// with the form fields `To`, `From` and `Body`, authenticated by the
/// account SID and auth token.
pub struct TwilioSender {
    client: reqwest::Client,
    messages_url: reqwest::Url,
    account_sid: String,
    auth_token: String,
    from: String,
}

impl TwilioSender {
    pub fn new(
        base_url: &str,
        account_sid: &str,
        auth_token: &str,
        from: &str,
    ) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(base_url)?;
        anyhow::ensure!(
            matches!(base.scheme(), "http" | "https"),
            "not an http:// or https:// URL"
        );
        // The SID goes into the path: refuse anything that would change it.
        anyhow::ensure!(
            !account_sid.is_empty() && account_sid.bytes().all(|b| b.is_ascii_alphanumeric()),
            "the account SID must be letters and digits"
        );
        let messages_url = base.join(&format!(
            "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
            base.path().trim_end_matches('/')
        ))?;
        Ok(Self {
            client: reqwest::Client::builder().timeout(TWILIO_TIMEOUT).build()?,
            messages_url,
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            from: from.to_owned(),
        })
    }
}

#[async_trait]
impl SmsSender for TwilioSender {
    async fn send(&self, to: &str, body: &str) -> Result<(), SmsError> {
        let response = self
            .client
            .post(self.messages_url.clone())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&[("To", to), ("From", self.from.as_str()), ("Body", body)])
            .send()
            .await
            // Without the URL: it holds nothing secret, but the error is
            // shown to operators and the SID needs no repeating there.
            .map_err(|err| SmsError::Unavailable(err.without_url().to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == reqwest::StatusCode::BAD_REQUEST {
            #[derive(serde::Deserialize)]
            struct TwilioError {
                code: Option<u32>,
            }
            let code = response
                .json::<TwilioError>()
                .await
                .ok()
                .and_then(|e| e.code);
            // The number's fault: invalid (21211), not a mobile (21614),
            // a region the account may not send to (21408), unsubscribed
            // (21610), unreachable (21612). Anything else (a bad From,
            // say) is the deployment's to fix, not the caller's.
            if matches!(code, Some(21211 | 21408 | 21610 | 21612 | 21614)) {
                return Err(SmsError::Refused);
            }
            return Err(SmsError::Unavailable(format!(
                "Twilio refused the request (error {}): check KITH_SMS_FROM and the account",
                code.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
            )));
        }
        Err(SmsError::Unavailable(format!("Twilio answered {status}")))
    }
}
