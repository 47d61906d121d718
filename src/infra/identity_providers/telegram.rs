//! Telegram WebApp `initData`, checked as Telegram documents it
//! (core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app):
//! the data-check string is every field but `hash`, as `key=value`, sorted by
//! key and joined by newlines; the secret key is HMAC-SHA256 of the bot token
//! keyed by `WebAppData`; `hash` is the hex HMAC-SHA256 of the data-check
//! string under that key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longer `initData` than any Telegram sends (a user with every field is
/// well under 1 KiB): refused before any work.
const MAX_INIT_DATA_BYTES: usize = 4096;

/// How far ahead of our clock an `auth_date` may be: Telegram's clock and
/// ours are not the same clock.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Who Telegram says signed in: the `user` field of `initData`.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct TelegramUser {
    pub id: i64,
    pub first_name: String,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub photo_url: Option<String>,
}

impl TelegramUser {
    /// First and last name, as Telegram shows them.
    pub fn full_name(&self) -> String {
        match &self.last_name {
            Some(last) if !last.trim().is_empty() => format!("{} {}", self.first_name, last),
            _ => self.first_name.clone(),
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InitDataError {
    /// Not a query string Telegram would send: the message says what.
    #[error("initData is malformed: {0}")]
    Malformed(&'static str),
    /// The hash does not match: tampered with, or signed for another bot.
    #[error("initData's hash does not match")]
    BadHash,
    #[error("initData is too old")]
    Stale,
    #[error("initData's auth_date is in the future")]
    Future,
}

/// Checks `initData` for one bot.
pub struct TelegramLogin {
    secret_key: [u8; 32],
    max_age: Duration,
}

impl TelegramLogin {
    pub fn new(bot_token: &str, max_age: Duration) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(b"WebAppData").expect("HMAC takes a key of any length");
        mac.update(bot_token.as_bytes());
        Self {
            secret_key: mac.finalize().into_bytes().into(),
            max_age,
        }
    }

    /// The user `init_data` names, if Telegram signed it for this bot and
    /// it is recent.
    pub fn verify(
        &self,
        init_data: &str,
        now: DateTime<Utc>,
    ) -> Result<TelegramUser, InitDataError> {
        if init_data.len() > MAX_INIT_DATA_BYTES {
            return Err(InitDataError::Malformed("longer than Telegram sends"));
        }
        let mut fields: Vec<(String, String)> = form_urlencoded::parse(init_data.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        if fields.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            // Two values for one key: which one was signed is ambiguous.
            return Err(InitDataError::Malformed("a field appears twice"));
        }
        let hash_at = fields
            .iter()
            .position(|(key, _)| key == "hash")
            .ok_or(InitDataError::Malformed("no hash"))?;
        let (_, hash) = fields.remove(hash_at);
        let hash = hex::decode(hash).map_err(|_| InitDataError::Malformed("hash is not hex"))?;
        let data_check_string = fields
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut mac =
            HmacSha256::new_from_slice(&self.secret_key).expect("HMAC takes a key of any length");
        mac.update(data_check_string.as_bytes());
        // Constant time: a guesser learns nothing from how long it took.
        mac.verify_slice(&hash)
            .map_err(|_| InitDataError::BadHash)?;

        // Only now, once Telegram is known to have said it, is it read.
        let field = |name: &str| {
            fields
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let auth_date: i64 = field("auth_date")
            .ok_or(InitDataError::Malformed("no auth_date"))?
            .parse()
            .map_err(|_| InitDataError::Malformed("auth_date is not a number"))?;
        let age = now.timestamp() - auth_date;
        if age < -(CLOCK_SKEW.as_secs() as i64) {
            return Err(InitDataError::Future);
        }
        if age > self.max_age.as_secs() as i64 {
            return Err(InitDataError::Stale);
        }
        let user = field("user").ok_or(InitDataError::Malformed("no user"))?;
        serde_json::from_str(user)
            .map_err(|_| InitDataError::Malformed("user is not a Telegram user"))
    }
}

/// Signs `fields` as Telegram would for `bot_token`: the query string a
/// WebApp would be handed. For tests, the seed and the e2e tools.
pub fn sign_init_data(bot_token: &str, fields: &[(&str, &str)]) -> String {
    let login = TelegramLogin::new(bot_token, Duration::ZERO);
    let mut sorted = fields.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let data_check_string = sorted
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut mac =
        HmacSha256::new_from_slice(&login.secret_key).expect("HMAC takes a key of any length");
    mac.update(data_check_string.as_bytes());
    let hash = hex::encode(mac.finalize().into_bytes());
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in fields {
        query.append_pair(key, value);
    }
    query.append_pair("hash", &hash);
    query.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

    fn signed(auth_date: i64) -> String {
        sign_init_data(
            TOKEN,
            &[
                ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"),
                (
                    "user",
                    r#"{"id":279058397,"first_name":"Vladislav","last_name":"Kibenko","username":"vdkfrost","language_code":"ru"}"#,
                ),
                ("auth_date", &auth_date.to_string()),
            ],
        )
    }

    #[test]
    fn a_signed_recent_init_data_names_its_user() {
        let now = Utc::now();
        let login = TelegramLogin::new(TOKEN, Duration::from_secs(86_400));
        let user = login.verify(&signed(now.timestamp() - 10), now).unwrap();
        assert_eq!(user.id, 279058397);
        assert_eq!(user.username.as_deref(), Some("vdkfrost"));
        assert_eq!(user.full_name(), "Vladislav Kibenko");
    }

    #[test]
    fn anything_else_is_refused() {
        let now = Utc::now();
        let login = TelegramLogin::new(TOKEN, Duration::from_secs(86_400));
        let fresh = signed(now.timestamp());
        let tampered = fresh.replace("Vladislav", "Mallory");
        assert_eq!(
            login.verify(&tampered, now).unwrap_err(),
            InitDataError::BadHash
        );
        let other_bot = TelegramLogin::new("999:other", Duration::from_secs(86_400));
        assert_eq!(
            other_bot.verify(&fresh, now).unwrap_err(),
            InitDataError::BadHash
        );
        let unhashed: String = fresh
            .split('&')
            .filter(|f| !f.starts_with("hash="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            login.verify(&unhashed, now).unwrap_err(),
            InitDataError::Malformed("no hash")
        );
        let doubled = format!("{fresh}&auth_date=1");
        assert!(matches!(
            login.verify(&doubled, now),
            Err(InitDataError::Malformed(_))
        ));
        assert_eq!(
            login
                .verify(&signed(now.timestamp() - 86_401), now)
                .unwrap_err(),
            InitDataError::Stale
        );
        assert_eq!(
            login
                .verify(&signed(now.timestamp() + 3600), now)
                .unwrap_err(),
            InitDataError::Future
        );
        assert!(matches!(
            login.verify(&"a".repeat(5000), now),
            Err(InitDataError::Malformed(_))
        ));
    }
}
