//! The services that vouch for a person, as accounts use them: the SMS
//! sender, and Telegram and Facebook when configured. Each provider's proof
//! becomes a [`ProviderIdentity`], or an error that says what was wrong
//! with it and never whether an account exists.

use std::{sync::Arc, time::Duration};

use chrono::Utc;

use super::{Phone, identities::SignInMethod};
use crate::{
    error::{AppError, AppResult},
    infra::{
        identity_providers::{FacebookError, GraphApi, InitDataError, TelegramLogin},
        sms::SmsSender,
    },
};

/// How long a caller is told to wait when a provider is down.
const PROVIDER_RETRY_AFTER_SECS: u64 = 5;

/// The sign-in providers of a deployment, chosen in `state.rs`.
pub struct SignInProviders {
    pub sms: Arc<dyn SmsSender>,
    pub sms_code_ttl: Duration,
    pub sms_code_attempts: u32,
    /// The key sign-in codes are hashed with (derived from the server's secret).
    pub sms_code_key: [u8; 32],
    pub telegram: Option<TelegramLogin>,
    pub facebook: Option<GraphApi>,
    /// How recently a session must have signed in to change how its
    /// account signs in (see [`crate::domain::accounts::Accounts::require_recent_sign_in`]).
    pub recent_sign_in: Duration,
}

/// Who a provider vouched for, in its own terms, with what it said of them.
#[derive(Clone, Debug)]
pub struct ProviderIdentity {
    pub method: SignInMethod,
    pub subject: String,
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub photo_url: Option<String>,
}

impl ProviderIdentity {
    pub fn phone(phone: &Phone) -> Self {
        Self {
            method: SignInMethod::Phone,
            subject: phone.as_str().to_owned(),
            display_name: None,
            username: None,
            photo_url: None,
        }
    }
}

/// Whether a bad proof is a failed sign-in (`UNAUTHENTICATED`) or a bad
/// argument of a signed-in user's link (`BAD_USER_INPUT` on the field, so
/// the app does not take it for its session ending).
#[derive(Clone, Copy)]
pub(super) enum Purpose {
    SignIn,
    Link,
}

impl Purpose {
    pub(super) fn refused(self, field: &'static str, message: String) -> AppError {
        match self {
            Self::SignIn => AppError::unauthenticated(message),
            Self::Link => AppError::bad_input(field, message),
        }
    }
}

fn not_configured(provider: &str, setting: &str) -> AppError {
    AppError::forbidden(format!(
        "{provider} sign-in is not configured on this server ({setting})"
    ))
}

fn provider_down(provider: &str) -> AppError {
    AppError::unavailable(
        PROVIDER_RETRY_AFTER_SECS,
        format!("{provider} is not answering; retry shortly"),
    )
}

impl SignInProviders {
    pub(super) fn telegram_identity(
        &self,
        init_data: &str,
        purpose: Purpose,
    ) -> AppResult<ProviderIdentity> {
        let telegram = self
            .telegram
            .as_ref()
            .ok_or_else(|| not_configured("Telegram", "KITH_TELEGRAM_BOT_TOKEN"))?;
        let user = telegram.verify(init_data, Utc::now()).map_err(|err| {
            let message = match err {
                InitDataError::Stale => "initData is too old: open the WebApp again".to_owned(),
                other => other.to_string(),
            };
            purpose.refused("initData", message)
        })?;
        Ok(ProviderIdentity {
            method: SignInMethod::Telegram,
            subject: user.id.to_string(),
            display_name: Some(user.full_name()),
            username: user.username.clone(),
            photo_url: user.photo_url.clone(),
        })
    }

    pub(super) async fn facebook_identity(
        &self,
        access_token: &str,
        purpose: Purpose,
    ) -> AppResult<ProviderIdentity> {
        let graph = self
            .facebook
            .as_ref()
            .ok_or_else(|| not_configured("Facebook", "KITH_FACEBOOK_APP_ID"))?;
        let profile = graph.verify(access_token).await.map_err(|err| match err {
            FacebookError::InvalidToken(why) => {
                purpose.refused("accessToken", format!("the Facebook access token is {why}"))
            }
            FacebookError::Unavailable(why) => {
                tracing::warn!(why, "Facebook sign-in: the Graph API failed");
                provider_down("Facebook")
            }
        })?;
        Ok(ProviderIdentity {
            method: SignInMethod::Facebook,
            subject: profile.id,
            display_name: profile.name,
            username: None,
            photo_url: None,
        })
    }

    pub(super) fn sms_unavailable() -> AppError {
        provider_down("the SMS provider")
    }
}
