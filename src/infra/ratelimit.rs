//! Rate limits on abusable actions: one keyed GCRA limiter (governor) per action,
//! each with its own rate from config. Keys are client addresses or identifiers.

use std::{fmt, num::NonZeroU32, str::FromStr, sync::Arc, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter as Governor,
    clock::{Clock, DefaultClock},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    config::{Settings, Switch},
    error::{AppError, AppResult},
};

/// "N per period", written `30/min`, `5/s`, `100/h` or `1000/day` in config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub count: NonZeroU32,
    pub period: Duration,
}

impl Rate {
    pub const fn per_minute(count: u32) -> Self {
        Self::new(count, 60)
    }

    pub const fn per_hour(count: u32) -> Self {
        Self::new(count, 3600)
    }

    const fn new(count: u32, period_secs: u64) -> Self {
        let count = match NonZeroU32::new(count) {
            Some(n) => n,
            None => panic!("a rate needs a count above zero"),
        };
        Self {
            count,
            period: Duration::from_secs(period_secs),
        }
    }

    /// The quota: `count` at once, refilling evenly over `period`.
    fn quota(self) -> Quota {
        let interval = self.period / self.count.get();
        Quota::with_period(interval.max(Duration::from_nanos(1)))
            .expect("a non-zero period")
            .allow_burst(self.count)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("rate {s:?} is not of the form N/unit"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("rate {s:?} has no positive count"))?;
        let count = NonZeroU32::new(count).ok_or_else(|| format!("rate {s:?} is zero"))?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            other => return Err(format!("rate unit {other:?} is not s, min, h or day")),
        };
        Ok(Self {
            count,
            period: Duration::from_secs(secs),
        })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            86_400 => "day",
            other => return write!(f, "{}/{}s", self.count, other),
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The actions that are limited. Each has its own rate and its own keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    LoginPerIp,
    LoginPerIdentifier,
    RegisterPerIp,
    RefreshPerIp,
    TypingPerUser,
    SwipePerUser,
    MessagePerUser,
}

const ACTIONS: usize = 7;

/// Keyed limiters for every [`Action`], or none at all when limits are off.
#[derive(Clone)]
pub struct RateLimiter {
    limiters: Option<Arc<[DefaultKeyedRateLimiter<String>; ACTIONS]>>,
}

impl RateLimiter {
    pub fn from_settings(settings: &Settings) -> Self {
        if settings.rate_limits == Switch::Off {
            return Self { limiters: None };
        }
        let keyed = |rate: Rate| Governor::keyed(rate.quota());
        Self {
            limiters: Some(Arc::new([
                keyed(settings.rate_login_per_ip),
                keyed(settings.rate_login_per_identifier),
                keyed(settings.rate_register_per_ip),
                keyed(settings.rate_refresh_per_ip),
                keyed(settings.rate_typing_per_user),
                keyed(settings.rate_swipes_per_user),
                keyed(settings.rate_messages_per_user),
            ])),
        }
    }

    /// Counts one attempt of `action` by `key`; `RATE_LIMITED` with the wait when
    /// the key is over its rate.
    pub fn check(&self, action: Action, key: &str) -> AppResult<()> {
        let Some(limiters) = &self.limiters else {
            return Ok(());
        };
        limiters[action as usize]
            .check_key(&key.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                AppError::RateLimited {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                    reason: None,
                }
            })
    }

    /// Forgets keys whose limits have fully recovered, so memory stays bounded by
    /// the recently active keys. Called periodically.
    pub fn forget_idle_keys(&self) {
        if let Some(limiters) = &self.limiters {
            for limiter in limiters.iter() {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print_the_same_way() {
        for text in ["30/min", "5/s", "100/h", "1000/day"] {
            let rate: Rate = text.parse().unwrap();
            assert_eq!(rate.to_string(), text);
        }
        assert!("0/min".parse::<Rate>().is_err());
        assert!("ten/min".parse::<Rate>().is_err());
        assert!("10/week".parse::<Rate>().is_err());
    }

    #[test]
    fn a_key_over_its_rate_is_told_when_to_retry() {
        let settings = Settings {
            rate_login_per_ip: Rate::per_minute(2),
            ..Settings::default()
        };
        let limiter = RateLimiter::from_settings(&settings);
        limiter.check(Action::LoginPerIp, "1.2.3.4").unwrap();
        limiter.check(Action::LoginPerIp, "1.2.3.4").unwrap();
        match limiter.check(Action::LoginPerIp, "1.2.3.4") {
            Err(AppError::RateLimited {
                retry_after_secs, ..
            }) => {
                assert!((1..=30).contains(&retry_after_secs))
            }
            other => panic!("expected RATE_LIMITED, got {other:?}"),
        }
        // Another key, and another action, are counted apart.
        limiter.check(Action::LoginPerIp, "5.6.7.8").unwrap();
        limiter.check(Action::RegisterPerIp, "1.2.3.4").unwrap();
    }
}
