//! Rate limits on abusable actions: GCRA per action and key, each action with
//! its own rate from config. Keys are client addresses, users or accounts.
//!
//! With Redis, every replica counts against the same limit: one Lua script
//! keeps each key's theoretical arrival time there, atomically. While Redis is
//! away each replica falls back to its own in-process counts (the same
//! algorithm), so a client gets at most N times its rate across N replicas
//! until Redis returns.
//!
//! An attempt can be given back ([`RateLimiter::refund`]): login reserves a
//! failure before it checks the password and returns it when the password was
//! right, so only failures count, and a burst of concurrent guesses cannot all
//! pass a limit that was only read before them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    config::{Rate, Settings, Switch},
    error::{AppError, AppResult},
    infra::redis::Redis,
};

/// The actions that are limited. Each has its own rate and its own keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    LoginPerIp,
    /// Failed logins on one account from one client address.
    LoginFailuresPerAccountAndIp,
    /// Failed logins on one account from anywhere: a slower ceiling.
    LoginFailuresPerAccount,
    RegisterPerIp,
    RefreshPerIp,
    TypingPerUser,
    SwipePerUser,
    MessagePerUser,
    /// `updateProfile` with a location.
    LocationPerUser,
    /// Recommendation decks dealt afresh.
    DeckPerUser,
    UsernameCheckPerIp,
    /// `uploadPhoto` and `uploadAttachment`.
    UploadPerUser,
    /// Sign-in codes sent to one number.
    SmsPerPhone,
    /// Sign-in codes asked for from one client address.
    SmsPerIp,
    /// Wrong sign-in codes tried on one number, across its codes.
    SmsFailuresPerPhone,
}

const ACTIONS: usize = 15;

impl Action {
    /// Its part of a Redis key.
    fn name(self) -> &'static str {
        match self {
            Self::LoginPerIp => "login-ip",
            Self::LoginFailuresPerAccountAndIp => "login-fail-account-ip",
            Self::LoginFailuresPerAccount => "login-fail-account",
            Self::RegisterPerIp => "register-ip",
            Self::RefreshPerIp => "refresh-ip",
            Self::TypingPerUser => "typing",
            Self::SwipePerUser => "swipe",
            Self::MessagePerUser => "message",
            Self::LocationPerUser => "location",
            Self::DeckPerUser => "deck",
            Self::UsernameCheckPerIp => "username-ip",
            Self::UploadPerUser => "upload",
            Self::SmsPerPhone => "sms-phone",
            Self::SmsPerIp => "sms-ip",
            Self::SmsFailuresPerPhone => "sms-fail-phone",
        }
    }
}

/// GCRA in one step. KEYS[1] holds the key's theoretical arrival time in
/// microseconds of Redis's clock (one clock for every replica); ARGV is the
/// emission interval in microseconds and the burst. Returns 0 when allowed
/// (and records it), otherwise the microseconds until it would be.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - (burst - 1) * interval
if now < allowed_at then return allowed_at - now end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
  'PX', math.ceil((next_tat - now) / 1000))
return 0
";

/// Gives one attempt back: moves KEYS[1]'s theoretical arrival time one
/// interval (ARGV[1]) earlier, forgetting the key once it is in the past.
const REFUND: &str = r"
local interval = tonumber(ARGV[1])
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local next_tat = tonumber(stored) - interval
if next_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', next_tat),
    'PX', math.ceil((next_tat - now) / 1000))
end
return 0
";

/// Limits for every [`Action`], or none at all when limits are off.
#[derive(Clone)]
pub struct RateLimiter {
    limits: Option<Arc<Limits>>,
}

struct Limits {
    rates: [Rate; ACTIONS],
    /// This replica's own counts: all there is without Redis, and the
    /// fallback while Redis is away.
    local: [LocalGcra; ACTIONS],
    shared: Option<Shared>,
}

struct Shared {
    redis: Redis,
    check: redis::Script,
    refund: redis::Script,
}

impl RateLimiter {
    pub fn from_settings(settings: &Settings, redis: Option<&Redis>) -> Self {
        if settings.rate_limits == Switch::Off {
            return Self { limits: None };
        }
        let rates = [
            settings.rate_login_per_ip,
            settings.rate_login_failures_per_account_and_ip,
            settings.rate_login_failures_per_account,
            settings.rate_register_per_ip,
            settings.rate_refresh_per_ip,
            settings.rate_typing_per_user,
            settings.rate_swipes_per_user,
            settings.rate_messages_per_user,
            settings.rate_location_per_user,
            settings.rate_decks_per_user,
            settings.rate_username_checks_per_ip,
            settings.rate_uploads_per_user,
            settings.rate_sms_per_phone,
            settings.rate_sms_per_ip,
            settings.rate_sms_failures_per_phone,
        ];
        Self {
            limits: Some(Arc::new(Limits {
                rates,
                local: rates.map(LocalGcra::new),
                shared: redis.map(|redis| Shared {
                    redis: redis.clone(),
                    check: redis::Script::new(GCRA),
                    refund: redis::Script::new(REFUND),
                }),
            })),
        }
    }

    /// Counts one attempt of `action` by `key`; `RATE_LIMITED` with the wait when
    /// the key is over its rate.
    pub async fn check(&self, action: Action, key: &str) -> AppResult<()> {
        let Some(limits) = &self.limits else {
            return Ok(());
        };
        let wait = match &limits.shared {
            Some(shared) if shared.redis.is_up() => {
                match limits.check_shared(shared, action, key).await {
                    Ok(wait) => wait,
                    Err(err) => {
                        tracing::warn!(error = %err, "shared rate limit unavailable; counting locally");
                        limits.local[action as usize].check(key)
                    }
                }
            }
            _ => limits.local[action as usize].check(key),
        };
        match wait {
            None => Ok(()),
            Some(wait) => Err(AppError::RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                reason: None,
            }),
        }
    }

    /// Gives back one attempt of `action` by `key` that [`Self::check`]
    /// counted, when it turned out not to be what the limit counts (a login
    /// whose password was right).
    pub async fn refund(&self, action: Action, key: &str) {
        let Some(limits) = &self.limits else {
            return;
        };
        if let Some(shared) = limits.shared.as_ref().filter(|s| s.redis.is_up()) {
            match limits.refund_shared(shared, action, key).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "shared rate limit unavailable; refunding locally");
                }
            }
        }
        limits.local[action as usize].refund(key);
    }

    /// Forgets keys whose limits have fully recovered, so memory stays bounded by
    /// the recently active keys. Called periodically.
    pub fn forget_idle_keys(&self) {
        if let Some(limits) = &self.limits {
            for limiter in &limits.local {
                limiter.forget_idle();
            }
        }
    }
}

impl Limits {
    /// How long until `key` may try again, if it may not now, counted in
    /// Redis for every replica.
    async fn check_shared(
        &self,
        shared: &Shared,
        action: Action,
        key: &str,
    ) -> anyhow::Result<Option<Duration>> {
        let rate = self.rates[action as usize];
        let mut connection = shared.redis.connection();
        let mut invocation = shared.check.key(Self::redis_key(shared, action, key));
        invocation.arg(rate.interval_micros()).arg(rate.count.get());
        let wait_micros: u64 = shared
            .redis
            .within(invocation.invoke_async(&mut connection))
            .await?;
        Ok((wait_micros > 0).then(|| Duration::from_micros(wait_micros)))
    }

    async fn refund_shared(
        &self,
        shared: &Shared,
        action: Action,
        key: &str,
    ) -> anyhow::Result<()> {
        let rate = self.rates[action as usize];
        let mut connection = shared.redis.connection();
        let mut invocation = shared.refund.key(Self::redis_key(shared, action, key));
        invocation.arg(rate.interval_micros());
        let _: u64 = shared
            .redis
            .within(invocation.invoke_async(&mut connection))
            .await?;
        Ok(())
    }

    fn redis_key(shared: &Shared, action: Action, key: &str) -> String {
        shared.redis.key(&format!("rl:{}:{key}", action.name()))
    }
}

/// The same GCRA as the Lua script, in this process: each key's theoretical
/// arrival time, in microseconds since the limiter started.
struct LocalGcra {
    interval: u64,
    burst: u64,
    started: Instant,
    arrivals: Mutex<HashMap<String, u64>>,
}

impl LocalGcra {
    fn new(rate: Rate) -> Self {
        Self {
            interval: rate.interval_micros(),
            burst: u64::from(rate.count.get()),
            started: Instant::now(),
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    fn now(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    fn arrivals(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // A panic elsewhere cannot leave the map half-written: use it as is.
        self.arrivals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one attempt; the wait when over the rate.
    fn check(&self, key: &str) -> Option<Duration> {
        let now = self.now();
        let mut arrivals = self.arrivals();
        let tat = arrivals.get(key).copied().unwrap_or(now).max(now);
        let allowed_at = tat.saturating_sub((self.burst - 1) * self.interval);
        if now < allowed_at {
            return Some(Duration::from_micros(allowed_at - now));
        }
        arrivals.insert(key.to_owned(), tat + self.interval);
        None
    }

    fn refund(&self, key: &str) {
        let now = self.now();
        let mut arrivals = self.arrivals();
        if let Some(tat) = arrivals.get_mut(key) {
            *tat = tat.saturating_sub(self.interval);
            if *tat <= now {
                arrivals.remove(key);
            }
        }
    }

    fn forget_idle(&self) {
        let now = self.now();
        let mut arrivals = self.arrivals();
        arrivals.retain(|_, tat| *tat > now);
        arrivals.shrink_to_fit();
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

    #[tokio::test]
    async fn a_key_over_its_rate_is_told_when_to_retry() {
        let settings = Settings {
            rate_login_per_ip: Rate::per_minute(2),
            ..Settings::default()
        };
        let limiter = RateLimiter::from_settings(&settings, None);
        limiter.check(Action::LoginPerIp, "1.2.3.4").await.unwrap();
        limiter.check(Action::LoginPerIp, "1.2.3.4").await.unwrap();
        match limiter.check(Action::LoginPerIp, "1.2.3.4").await {
            Err(AppError::RateLimited {
                retry_after_secs, ..
            }) => {
                assert!((1..=30).contains(&retry_after_secs))
            }
            other => panic!("expected RATE_LIMITED, got {other:?}"),
        }
        // Another key, and another action, are counted apart.
        limiter.check(Action::LoginPerIp, "5.6.7.8").await.unwrap();
        limiter
            .check(Action::RegisterPerIp, "1.2.3.4")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_refunded_attempt_is_not_counted() {
        let settings = Settings {
            rate_login_failures_per_account: Rate::per_hour(2),
            ..Settings::default()
        };
        let limiter = RateLimiter::from_settings(&settings, None);
        let action = Action::LoginFailuresPerAccount;
        for _ in 0..5 {
            limiter.check(action, "account").await.unwrap();
            limiter.refund(action, "account").await;
        }
        limiter.check(action, "account").await.unwrap();
        limiter.check(action, "account").await.unwrap();
        assert!(limiter.check(action, "account").await.is_err());
        // Refunding a key never counted is harmless.
        limiter.refund(action, "someone else").await;
        limiter.check(action, "someone else").await.unwrap();
    }
}
