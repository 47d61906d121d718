//! The shared Redis of a scaled-out deployment: one handle for commands, the
//! key prefix every replica of one deployment agrees on, and a health flag the
//! Redis-backed adapters consult so they fall back to their in-process
//! versions (degraded, not dead) while Redis is away.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use redis::{IntoConnectionInfo, ProtocolVersion, aio::ConnectionManager};

use crate::infra::db::redact;

/// How often the health check pings, and so how soon a lost or returned
/// Redis is noticed.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// A command slower than this counts as Redis being away: a request never
/// waits longer on Redis before it falls back.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    manager: ConnectionManager,
    prefix: Arc<str>,
    up: Arc<AtomicBool>,
    outages: Arc<AtomicU64>,
}

impl Redis {
    /// A handle that connects on first use and reconnects by itself, so a Redis
    /// that is down at start (or later) makes kith degraded, not dead. Every
    /// key and channel starts with `prefix`.
    pub fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).with_context(|| format!("bad REDIS_URL {}", redact(url)))?;
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config())
            .with_context(|| format!("setting up Redis at {}", redact(url)))?;
        Ok(Self {
            client,
            manager,
            prefix: prefix.into(),
            // Optimistic until the first ping says otherwise: a request that
            // tries Redis and fails falls back anyway.
            up: Arc::new(AtomicBool::new(true)),
            outages: Arc::default(),
        })
    }

    /// A connection for commands (cheap to clone; all clones share one
    /// multiplexed connection).
    pub fn connection(&self) -> ConnectionManager {
        self.manager.clone()
    }

    /// A second connection for subscriptions, which Redis pushes messages on
    /// (RESP3) and which resubscribes by itself after reconnecting.
    pub fn subscriber(
        &self,
        pushes: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    ) -> anyhow::Result<ConnectionManager> {
        let info = self.client.get_connection_info().clone();
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings).into_connection_info()?)?;
        let config = manager_config()
            .set_push_sender(pushes)
            .set_automatic_resubscription();
        Ok(ConnectionManager::new_lazy_with_config(client, config)?)
    }

    /// `prefix` + `name`: the key or channel as Redis knows it.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the last health check reached Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Pings Redis every second for as long as it runs, keeping [`Self::is_up`]
    /// and the `kith_redis_up` gauge current and logging each change.
    pub async fn watch_health(self) {
        let mut every = tokio::time::interval(HEALTH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let up = self.ping().await;
            let was = self.up.swap(up, Ordering::Relaxed);
            if was && !up {
                self.outages.fetch_add(1, Ordering::Relaxed);
            }
            metrics::gauge!("kith_redis_up").set(if up { 1.0 } else { 0.0 });
            match (was, up) {
                (true, false) => tracing::warn!("Redis is unreachable: serving degraded"),
                (false, true) => tracing::info!("Redis is back"),
                _ => {}
            }
        }
    }

    /// Runs one call to Redis within [`COMMAND_TIMEOUT`]. A lost or refused
    /// connection marks Redis away at once (the health check marks it back),
    /// so the requests after this one fall back without waiting too. A slow
    /// answer does not: that is as often this process being busy, and being
    /// marked away drops events on their way to the other replicas.
    pub async fn within<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> anyhow::Result<T> {
        let failure = match tokio::time::timeout(COMMAND_TIMEOUT, call).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(err)) => {
                let unreachable =
                    err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal();
                (unreachable, anyhow::Error::new(err))
            }
            Err(elapsed) => (false, anyhow::Error::new(elapsed)),
        };
        let (unreachable, err) = failure;
        if unreachable && self.up.swap(false, Ordering::Relaxed) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            metrics::gauge!("kith_redis_up").set(0.0);
            tracing::warn!(error = %err, "Redis is unreachable: serving degraded");
        }
        Err(err)
    }

    /// How many times Redis has been marked away since start: whoever keeps
    /// state there puts it back when this moves (Redis may have restarted
    /// empty, or missed writes meanwhile).
    pub fn outages(&self) -> u64 {
        self.outages.load(Ordering::Relaxed)
    }

    /// One PING, answered within [`COMMAND_TIMEOUT`].
    pub async fn ping(&self) -> bool {
        let mut connection = self.connection();
        let pong = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await;
        matches!(pong, Ok(Ok(_)))
    }
}

fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}
