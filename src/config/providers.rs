//! The sign-in providers' settings, checked as a whole at start: a provider
//! half configured (Twilio without its token, a Facebook app id without its
//! secret) is an error naming the setting to fix, not a sign-in that fails
//! later.

use serde::{Deserialize, Serialize};

use super::{Settings, bad_setting};

/// `KITH_SMS_SENDER`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsSenderKind {
    #[default]
    Log,
    Twilio,
}

/// Where sign-in codes go.
#[derive(Clone, Debug)]
pub enum SmsBackend {
    Log,
    Twilio {
        base_url: String,
        account_sid: String,
        auth_token: String,
        from: String,
    },
}

/// The Facebook app sign-ins are checked for.
#[derive(Clone)]
pub struct FacebookApp {
    pub graph_url: String,
    pub app_id: String,
    pub app_secret: String,
}

fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

impl Settings {
    pub fn sms_backend(&self) -> anyhow::Result<SmsBackend> {
        match self.sms_sender {
            SmsSenderKind::Log => Ok(SmsBackend::Log),
            SmsSenderKind::Twilio => {
                let required = |name: &str, value: &Option<String>| {
                    given(value)
                        .ok_or_else(|| bad_setting(name, "required with KITH_SMS_SENDER=twilio"))
                };
                Ok(SmsBackend::Twilio {
                    base_url: self.twilio_base_url.clone(),
                    account_sid: required("KITH_TWILIO_ACCOUNT_SID", &self.twilio_account_sid)?,
                    auth_token: required("KITH_TWILIO_AUTH_TOKEN", &self.twilio_auth_token)?,
                    from: required("KITH_SMS_FROM", &self.sms_from)?,
                })
            }
        }
    }

    /// The bot whose WebApp may sign users in, if any.
    pub fn telegram_bot_token(&self) -> Option<String> {
        given(&self.telegram_bot_token)
    }

    /// The Facebook app sign-ins are for: both its id and secret, or
    /// neither (Facebook sign-in off).
    pub fn facebook_app(&self) -> anyhow::Result<Option<FacebookApp>> {
        match (
            given(&self.facebook_app_id),
            given(&self.facebook_app_secret),
        ) {
            (Some(app_id), Some(app_secret)) => Ok(Some(FacebookApp {
                graph_url: self.facebook_graph_url.clone(),
                app_id,
                app_secret,
            })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(bad_setting(
                "KITH_FACEBOOK_APP_SECRET",
                "required with KITH_FACEBOOK_APP_ID",
            )),
            (None, Some(_)) => Err(bad_setting(
                "KITH_FACEBOOK_APP_ID",
                "required with KITH_FACEBOOK_APP_SECRET",
            )),
        }
    }
}
