//! The webhook settings, checked as a whole at start: URLs without a
//! secret, a URL that is not `http(s)://`, or a type pattern that could
//! never match stop kith with the setting to fix, rather than events that
//! go nowhere later.

use std::time::Duration;

use super::{Settings, bad_setting};

/// Where webhooks go and how they are signed and retried.
#[derive(Clone)]
pub struct Webhooks {
    pub urls: Vec<String>,
    pub secret: String,
    /// Exact types (`user.registered`) and families (`message.*`); empty
    /// means every type.
    pub events: Vec<String>,
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff: Duration,
}

/// Kept out of logs and panics: the secret signs every delivery.
impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("urls", &self.urls)
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Settings {
    /// The webhooks to deliver, if any URL is set.
    pub fn webhooks(&self) -> anyhow::Result<Option<Webhooks>> {
        let mut urls = list(self.webhook_urls.as_deref());
        // One lane per URL: a URL listed twice would race itself.
        let mut seen = std::collections::HashSet::new();
        urls.retain(|url| seen.insert(url.clone()));
        if urls.is_empty() {
            return Ok(None);
        }
        for url in &urls {
            let parsed = reqwest::Url::parse(url)
                .map_err(|err| bad_setting("KITH_WEBHOOK_URLS", &format!("{url}: {err}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(bad_setting(
                    "KITH_WEBHOOK_URLS",
                    &format!("{url}: not an http:// or https:// URL"),
                ));
            }
        }
        let secret = self
            .webhook_secret
            .as_deref()
            .map(str::trim)
            .filter(|secret| !secret.is_empty())
            .ok_or_else(|| {
                bad_setting(
                    "KITH_WEBHOOK_SECRET",
                    "required with KITH_WEBHOOK_URLS (receivers check each delivery's signature with it)",
                )
            })?
            .to_owned();
        let events = list(self.webhook_events.as_deref());
        if let Some(bad) = events.iter().find(|pattern| !is_type_pattern(pattern)) {
            return Err(bad_setting(
                "KITH_WEBHOOK_EVENTS",
                &format!(
                    "`{bad}` is neither an event type (`user.registered`) nor a family (`message.*`) nor `*`"
                ),
            ));
        }
        if self.webhook_timeout_secs == 0 {
            return Err(bad_setting(
                "KITH_WEBHOOK_TIMEOUT_SECS",
                "must be at least 1",
            ));
        }
        if self.webhook_max_attempts == 0 {
            return Err(bad_setting(
                "KITH_WEBHOOK_MAX_ATTEMPTS",
                "must be at least 1",
            ));
        }
        Ok(Some(Webhooks {
            urls,
            secret,
            events,
            timeout: Duration::from_secs(self.webhook_timeout_secs),
            max_attempts: self.webhook_max_attempts,
            backoff: Duration::from_millis(self.webhook_backoff_millis),
        }))
    }
}

/// Lower-case dotted words, the last of which may be `*`; or `*` alone.
fn is_type_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let words = pattern.strip_suffix(".*").unwrap_or(pattern);
    !words.is_empty()
        && words.split('.').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(configure: impl FnOnce(&mut Settings)) -> anyhow::Result<Option<Webhooks>> {
        let mut settings = Settings::default();
        configure(&mut settings);
        settings.webhooks()
    }

    #[test]
    fn urls_without_a_secret_stop_the_start_naming_the_secret() {
        let err = with(|s| s.webhook_urls = Some("https://hooks.example.com/kith".into()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad setting KITH_WEBHOOK_SECRET:"), "{err}");
        assert!(with(|_| {}).unwrap().is_none(), "no URLs, no webhooks");
    }

    #[test]
    fn urls_and_types_are_read_as_lists_and_checked() {
        let hooks = with(|s| {
            s.webhook_urls = Some(
                " https://a.example.com/in , http://b.example.com/x,https://a.example.com/in"
                    .into(),
            );
            s.webhook_secret = Some("s3cret".into());
            s.webhook_events = Some("user.registered, message.*".into());
        })
        .unwrap()
        .unwrap();
        assert_eq!(
            hooks.urls,
            ["https://a.example.com/in", "http://b.example.com/x"]
        );
        assert_eq!(hooks.events, ["user.registered", "message.*"]);
        assert!(!format!("{hooks:?}").contains("s3cret"));
        for (name, configure) in [
            (
                "KITH_WEBHOOK_URLS",
                (|s: &mut Settings| s.webhook_urls = Some("ftp://a.example.com".into()))
                    as fn(&mut Settings),
            ),
            ("KITH_WEBHOOK_EVENTS", |s| {
                s.webhook_events = Some("message*".into())
            }),
            ("KITH_WEBHOOK_EVENTS", |s| {
                s.webhook_events = Some("User.*".into())
            }),
            ("KITH_WEBHOOK_TIMEOUT_SECS", |s| s.webhook_timeout_secs = 0),
        ] {
            let err = with(|s| {
                s.webhook_urls = Some("https://a.example.com".into());
                s.webhook_secret = Some("s3cret".into());
                configure(s);
            })
            .unwrap_err()
            .to_string();
            assert!(err.starts_with(&format!("bad setting {name}:")), "{err}");
        }
    }
}
