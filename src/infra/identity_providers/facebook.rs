//! Facebook Login, checked on the server: the app's access token asks the
//! Graph API's `debug_token` whether the user's token is valid and was
//! issued for this app, then the user's token asks `me` who they are.
//! (developers.facebook.com/docs/facebook-login/guides/access-tokens/debugging)

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// How long one Graph API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Calls tried at most, when the Graph API fails or does not answer.
const ATTEMPTS: u32 = 2;
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// The whole check, both calls and their retries: inside a request's
/// execution timeout, so the caller hears why.
const CHECK_DEADLINE: Duration = Duration::from_secs(8);
/// Longer access tokens than Facebook issues are refused without a call.
const MAX_TOKEN_BYTES: usize = 2048;

/// Who Facebook says the token's user is.
#[derive(Clone, Debug, Deserialize)]
pub struct FacebookProfile {
    /// The app-scoped user id.
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FacebookError {
    /// Not valid, expired, or issued for another app.
    #[error("the access token is not valid for this app: {0}")]
    InvalidToken(&'static str),
    /// The Graph API failed, timed out or could not be reached.
    #[error("the Graph API is unavailable: {0}")]
    Unavailable(String),
}

/// A Graph API for one app.
pub struct GraphApi {
    client: reqwest::Client,
    base: String,
    app_id: String,
    app_secret: String,
}

#[derive(Deserialize)]
struct DebugToken {
    data: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    #[serde(default)]
    is_valid: bool,
    #[serde(default)]
    app_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    /// Seconds since the epoch; 0 for a token that does not expire.
    #[serde(default)]
    expires_at: Option<i64>,
}

enum Call {
    Answered(reqwest::StatusCode, bytes::Bytes),
    Failed(String),
}

impl GraphApi {
    pub fn new(base_url: &str, app_id: &str, app_secret: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(base_url)?;
        anyhow::ensure!(
            matches!(url.scheme(), "http" | "https"),
            "not an http:// or https:// URL"
        );
        Ok(Self {
            client: reqwest::Client::builder().timeout(CALL_TIMEOUT).build()?,
            base: base_url.trim_end_matches('/').to_owned(),
            app_id: app_id.to_owned(),
            app_secret: app_secret.to_owned(),
        })
    }

    /// The user `access_token` belongs to, once the Graph API has said it
    /// is valid and this app's.
    pub async fn verify(&self, access_token: &str) -> Result<FacebookProfile, FacebookError> {
        if access_token.is_empty()
            || access_token.len() > MAX_TOKEN_BYTES
            || !access_token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(FacebookError::InvalidToken("not an access token"));
        }
        tokio::time::timeout(CHECK_DEADLINE, self.check(access_token))
            .await
            .unwrap_or_else(|_| Err(FacebookError::Unavailable("timed out".into())))
    }

    async fn check(&self, access_token: &str) -> Result<FacebookProfile, FacebookError> {
        let app_token = format!("{}|{}", self.app_id, self.app_secret);
        let (status, body) = self
            .get(
                "debug_token",
                &[("input_token", access_token), ("access_token", &app_token)],
            )
            .await?;
        // Whatever the user's token, debug_token answers 200 with
        // `is_valid`; a 4xx means the app's own token was refused: the
        // deployment's id or secret is wrong, not the user's token.
        if status.is_client_error() {
            return Err(FacebookError::Unavailable(format!(
                "debug_token answered {status}: check KITH_FACEBOOK_APP_ID and KITH_FACEBOOK_APP_SECRET"
            )));
        }
        let info = serde_json::from_slice::<DebugToken>(&body)
            .map_err(|_| FacebookError::Unavailable("debug_token answered no token data".into()))?
            .data;
        if !info.is_valid {
            return Err(FacebookError::InvalidToken("not valid or expired"));
        }
        if info.app_id.as_deref() != Some(self.app_id.as_str()) {
            return Err(FacebookError::InvalidToken("issued for another app"));
        }
        if info
            .expires_at
            .is_some_and(|at| at != 0 && at <= chrono::Utc::now().timestamp())
        {
            return Err(FacebookError::InvalidToken("expired"));
        }
        let (status, body) = self
            .get(
                "me",
                &[
                    ("fields", "id,name,email"),
                    ("access_token", access_token),
                    ("appsecret_proof", &self.appsecret_proof(access_token)),
                ],
            )
            .await?;
        if status.is_client_error() {
            return Err(FacebookError::InvalidToken("refused by the Graph API"));
        }
        let profile = serde_json::from_slice::<FacebookProfile>(&body)
            .map_err(|_| FacebookError::Unavailable("me answered no user".into()))?;
        // The same person debug_token vouched for, or neither is believed.
        if info.user_id.as_deref() != Some(profile.id.as_str()) || profile.id.is_empty() {
            return Err(FacebookError::InvalidToken("names another user"));
        }
        Ok(profile)
    }

    /// Proves the call comes from the app's server, as Facebook recommends:
    /// HMAC-SHA256 of the user's token keyed by the app secret.
    fn appsecret_proof(&self, access_token: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.app_secret.as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(access_token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// `GET {base}/{path}?query`, retried once when the Graph API fails (5xx)
    /// or does not answer; a 2xx or 4xx answer is final. Errors never carry
    /// the URL: its query holds the app secret.
    async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(reqwest::StatusCode, bytes::Bytes), FacebookError> {
        let url = format!("{}/{path}", self.base);
        let mut last_failure = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            match self.call(&url, query).await {
                Call::Answered(status, body) if !status.is_server_error() => {
                    return Ok((status, body));
                }
                Call::Answered(status, _) => last_failure = format!("{path} answered {status}"),
                Call::Failed(why) => last_failure = format!("{path}: {why}"),
            }
        }
        Err(FacebookError::Unavailable(last_failure))
    }

    async fn call(&self, url: &str, query: &[(&str, &str)]) -> Call {
        let response = match self.client.get(url).query(query).send().await {
            Ok(response) => response,
            Err(err) => return Call::Failed(err.without_url().to_string()),
        };
        let status = response.status();
        match response.bytes().await {
            Ok(body) => Call::Answered(status, body),
            Err(err) => Call::Failed(err.without_url().to_string()),
        }
    }
}
