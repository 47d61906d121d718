//! A two-level read cache for hot lookups by id: moka in this process, then
//! Redis shared by every replica, then the loader (the database).
//!
//! - Single flight at each level: concurrent misses of one key in a process
//!   wait for one lookup, so N requests cost one Redis read and at most one
//!   database query (across R replicas, at most R).
//! - Lifetimes are jittered ±10% so entries written together do not all
//!   expire together and stampede the database.
//! - Invalidation reaches every replica: the writer deletes (or overwrites)
//!   the shared entry before it answers, drops its own copy, and announces the
//!   keys on the `cache` topic, which each replica's listener drops locally.
//! - Without Redis (or while it is away) only the local level is used, and
//!   invalidation stays local; what a write could not change in Redis is put
//!   right as soon as Redis is back, so no stale entry returns with it.
//! - A [`Freshness::Immediate`] cache (session validity: a logout must hold
//!   on every replica at once) never uses the local level: a replica's own
//!   copy could only be dropped when the invalidation reaches it, a moment
//!   after the writer has answered (or never, while Redis is away). It reads
//!   Redis, whose entry the writer settles before it answers, and the
//!   database while Redis is away or absent.
//!
//! Values are stored as JSON, and `None` (nothing there) is cached too.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use futures_util::StreamExt;
use moka::{Expiry, future::Cache};
use rand::Rng;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::{
    error::{AppError, AppResult},
    infra::{pubsub::PubSub, redis::Redis},
};

/// The topic every replica listens on for invalidations.
pub const CACHE_TOPIC: &str = "cache";

/// Every replica forgets its copies of these keys of the named cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invalidation {
    pub cache: String,
    pub keys: Vec<Uuid>,
}

/// The hub invalidations travel on: a hub of their own, so the caches know
/// nothing of what the domains announce.
pub type Invalidations = Arc<dyn PubSub<Invalidation>>;
/// When an invalidation is repeated (see [`TwoLevelCache::invalidate`]).
const SECOND_INVALIDATION: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct TwoLevelCache<V: Clone + Send + Sync + 'static> {
    inner: Arc<Inner<V>>,
}

/// How soon every replica must see an invalidation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// When the announcement reaches it (a few milliseconds).
    Eventual,
    /// Before the writer answers, on every replica: never from this
    /// process's own copy, so only through Redis, or else from the loader.
    /// (A cache of a process that runs alone, on SQLite, is `Eventual`: its
    /// own invalidation is immediate.)
    Immediate,
}

struct Inner<V: Clone + Send + Sync + 'static> {
    /// Names the cache in keys, metrics and invalidations.
    name: &'static str,
    freshness: Freshness,
    local: Cache<Uuid, Option<V>>,
    shared: Option<Redis>,
    shared_ttl: Duration,
    pubsub: Invalidations,
    /// Shared entries a write could not reach while Redis was away: put
    /// right as soon as it is back, so a stale value does not return with it.
    unsettled: std::sync::Mutex<HashMap<Uuid, Settle<V>>>,
}

/// What a write left a shared entry as.
#[derive(Clone)]
enum Settle<V> {
    /// Gone: the next read loads it afresh.
    Forgotten,
    /// Final (a revoked session stays revoked): set over whatever a reader
    /// stored, which no later reader may overwrite.
    Final(Option<V>),
}

/// Most entries remembered while Redis is away; past that, a warning.
const MAX_UNSETTLED: usize = 100_000;
/// How often remembered entries are tried again.
const RETRY_UNSETTLED_EVERY: Duration = Duration::from_secs(1);

/// How much a cache's local level holds.
pub enum Capacity<V> {
    /// At most this many entries.
    Entries(u64),
    /// Entries up to this total weight, for values whose sizes differ a lot
    /// (a hub's friend list is a thousand times a newcomer's).
    Weight { max: u64, weigh: fn(&V) -> u32 },
}

/// Each entry lives its lifetime ±10%.
struct Jittered(Duration);

impl<V> Expiry<Uuid, V> for Jittered {
    fn expire_after_create(&self, _: &Uuid, _: &V, _: std::time::Instant) -> Option<Duration> {
        Some(jitter(self.0))
    }
}

fn jitter(lifetime: Duration) -> Duration {
    lifetime.mul_f64(rand::rng().random_range(0.9..1.1))
}

impl<V> TwoLevelCache<V>
where
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub fn new(
        name: &'static str,
        freshness: Freshness,
        capacity: Capacity<V>,
        local_ttl: Duration,
        shared_ttl: Duration,
        shared: Option<&Redis>,
        pubsub: Invalidations,
    ) -> Self {
        let builder = Cache::builder().expire_after(Jittered(local_ttl));
        let local = match capacity {
            Capacity::Entries(max) => builder.max_capacity(max).build(),
            Capacity::Weight { max, weigh } => builder
                .max_capacity(max)
                .weigher(move |_, value: &Option<V>| value.as_ref().map_or(1, weigh))
                .build(),
        };
        Self {
            inner: Arc::new(Inner {
                name,
                freshness,
                local,
                shared: shared.cloned(),
                shared_ttl,
                pubsub,
                unsettled: std::sync::Mutex::default(),
            }),
        }
    }

    /// The value for `key`: from this process, from Redis, or from `load`
    /// (then kept at both levels).
    pub async fn get_or_load<F, Fut>(&self, key: Uuid, load: F) -> AppResult<Option<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<Option<V>>>,
    {
        let inner = &self.inner;
        if inner.freshness == Freshness::Immediate {
            return match inner.redis() {
                Some(_) => inner.shared_or_load(key, load).await,
                None => {
                    inner.count("loaded");
                    load().await
                }
            };
        }
        let mut missed = false;
        let found = inner
            .local
            .try_get_with(key, async {
                missed = true;
                inner.shared_or_load(key, load).await
            })
            .await
            // Shared by every waiter of the flight: rebuilt, so a database
            // outage stays retryable for each of them.
            .map_err(|err: Arc<AppError>| AppError::from_shared(&err, "a shared load"))?;
        if !missed {
            inner.count("local");
        }
        Ok(found)
    }

    /// The values for many keys at once (a DataLoader's batch): what this
    /// process has, then one `MGET` for the rest, then one `load` of what is
    /// still missing, which is kept at both levels. Keys nobody has are
    /// absent from the answer (and cached as such). Concurrent batches are
    /// not merged here: the DataLoader already merges a request's lookups.
    pub async fn get_many_or_load<F, Fut>(
        &self,
        keys: &[Uuid],
        load: F,
    ) -> AppResult<HashMap<Uuid, V>>
    where
        F: FnOnce(Vec<Uuid>) -> Fut,
        Fut: Future<Output = AppResult<HashMap<Uuid, V>>>,
    {
        let inner = &self.inner;
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for &key in keys {
            match inner.local.get(&key).await {
                Some(cached) => {
                    inner.count("local");
                    found.extend(cached.map(|value| (key, value)));
                }
                None => missing.push(key),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let shared = inner.shared_get_many(&missing).await;
        let mut to_load = Vec::new();
        for (key, cached) in missing.into_iter().zip(shared) {
            match cached {
                Some(cached) => {
                    inner.count("shared");
                    inner.local.insert(key, cached.clone()).await;
                    found.extend(cached.map(|value| (key, value)));
                }
                None => to_load.push(key),
            }
        }
        if to_load.is_empty() {
            return Ok(found);
        }
        for _ in &to_load {
            inner.count("loaded");
        }
        let mut loaded = load(to_load.clone()).await?;
        let fresh: Vec<(Uuid, Option<V>)> = to_load
            .into_iter()
            .map(|key| (key, loaded.remove(&key)))
            .collect();
        inner
            .shared_put_many(fresh.iter().map(|(key, value)| (*key, value)))
            .await;
        for (key, value) in fresh {
            inner.local.insert(key, value.clone()).await;
            found.extend(value.map(|value| (key, value)));
        }
        Ok(found)
    }

    /// Forgets `keys` on every replica: the shared entries before this
    /// returns, the others' local copies as the announcement reaches them.
    /// Once more a moment later: a reader that loaded the old value just
    /// before the write and stores it just after would otherwise keep it
    /// for a whole lifetime.
    pub async fn invalidate(&self, keys: &[Uuid]) {
        self.write(keys, Settle::Forgotten).await;
    }

    /// Like [`Self::invalidate`], for a value that will not change again (a
    /// revoked session): the shared entry is set to it, over anything a
    /// reader who loaded before the write might store after it.
    pub async fn settle(&self, keys: &[Uuid], value: Option<V>) {
        self.write(keys, Settle::Final(value)).await;
    }

    /// Runs on a task of its own, which the caller waits for: a writer whose
    /// request is dropped (its client went away) just after its commit still
    /// invalidates.
    async fn write(&self, keys: &[Uuid], settle: Settle<V>) {
        if keys.is_empty() {
            return;
        }
        let (cache, keys) = (self.clone(), keys.to_vec());
        let (done, written) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            cache.write_once(&keys, &settle).await;
            let _ = done.send(());
            tokio::time::sleep(SECOND_INVALIDATION).await;
            cache.write_once(&keys, &settle).await;
        });
        let _ = written.await;
    }

    async fn write_once(&self, keys: &[Uuid], settle: &Settle<V>) {
        let inner = &self.inner;
        if inner.shared.is_some() && !inner.shared_settle(keys, settle).await {
            // Redis is away: its copies must be put right when it is back.
            let mut unsettled = inner.unsettled.lock().unwrap_or_else(|p| p.into_inner());
            if unsettled.len() + keys.len() > MAX_UNSETTLED {
                tracing::error!(
                    cache = inner.name,
                    "too many writes while Redis is away: some of its entries may be stale when it returns"
                );
            } else {
                unsettled.extend(keys.iter().map(|key| (*key, settle.clone())));
            }
        }
        self.forget_locally(keys).await;
        inner.pubsub.publish(
            CACHE_TOPIC,
            Invalidation {
                cache: inner.name.to_owned(),
                keys: keys.to_vec(),
            },
        );
    }

    async fn forget_locally(&self, keys: &[Uuid]) {
        for key in keys {
            self.inner.local.invalidate(key).await;
        }
    }

    /// Puts right the shared entries writes could not reach, if Redis is back.
    async fn retry_unsettled(&self) {
        let inner = &self.inner;
        let pending: Vec<(Uuid, Settle<V>)> = {
            let unsettled = inner.unsettled.lock().unwrap_or_else(|p| p.into_inner());
            if unsettled.is_empty() || inner.redis().is_none() {
                return;
            }
            unsettled.iter().map(|(k, s)| (*k, s.clone())).collect()
        };
        // Forgotten keys go in batches (one DEL each); a final value is
        // rare (a revocation while Redis was away): one by one.
        let (forgotten, finals): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|(_, settle)| matches!(settle, Settle::Forgotten));
        let forgotten: Vec<Uuid> = forgotten.into_iter().map(|(key, _)| key).collect();
        let mut settled = Vec::new();
        for chunk in forgotten.chunks(500) {
            if inner.shared_settle(chunk, &Settle::Forgotten).await {
                settled.extend_from_slice(chunk);
            }
        }
        for (key, settle) in finals {
            if inner.shared_settle(&[key], &settle).await {
                settled.push(key);
            }
        }
        let mut unsettled = inner.unsettled.lock().unwrap_or_else(|p| p.into_inner());
        for key in settled {
            unsettled.remove(&key);
        }
    }

    /// Drops local copies as other replicas announce invalidations, and puts
    /// right what writes left unsettled while Redis was away, for as long as it
    /// runs.
    pub async fn follow_invalidations(self) {
        let mut events = self.inner.pubsub.subscribe(CACHE_TOPIC).await;
        let mut retry = tokio::time::interval(RETRY_UNSETTLED_EVERY);
        loop {
            let next = tokio::select! {
                next = events.next() => next,
                _ = retry.tick() => {
                    self.retry_unsettled().await;
                    continue;
                }
            };
            match next {
                Some(Ok(event)) => {
                    if event.cache == self.inner.name {
                        self.forget_locally(&event.keys).await;
                    }
                }
                // Missed some: anything could be stale, so start afresh,
                // once listening again (so nothing announced meanwhile is
                // missed as well).
                Some(Err(_)) => {
                    events = self.inner.pubsub.subscribe(CACHE_TOPIC).await;
                    self.inner.local.invalidate_all();
                }
                None => return,
            }
        }
    }
}

impl<V> Inner<V>
where
    V: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn shared_key(&self, key: Uuid) -> String {
        format!("cache:{}:{key}", self.name)
    }

    fn count(&self, level: &'static str) {
        metrics::counter!("kith_cache_lookups_total", "cache" => self.name, "level" => level)
            .increment(1);
    }

    /// Redis, while it answers.
    fn redis(&self) -> Option<&Redis> {
        self.shared.as_ref().filter(|redis| redis.is_up())
    }

    /// From Redis, or else from `load` (then kept in Redis).
    async fn shared_or_load<F, Fut>(&self, key: Uuid, load: F) -> AppResult<Option<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<Option<V>>>,
    {
        if let Some(found) = self.shared_get_many(&[key]).await.pop().flatten() {
            self.count("shared");
            return Ok(found);
        }
        self.count("loaded");
        let loaded = load().await?;
        self.shared_put_many([(key, &loaded)]).await;
        Ok(loaded)
    }

    /// Adds `SET name bytes [NX] PX lifetime` (jittered) to `pipe`.
    fn push_set(&self, pipe: &mut redis::Pipeline, name: String, bytes: &[u8], only_new: bool) {
        let ttl = jitter(self.shared_ttl).as_millis() as u64;
        let set = pipe.cmd("SET").arg(name).arg(bytes);
        if only_new {
            set.arg("NX");
        }
        set.arg("PX").arg(ttl.max(1)).ignore();
    }

    /// Writes `settle` for `keys` in Redis; false when Redis is away or the
    /// write failed.
    async fn shared_settle(&self, keys: &[Uuid], settle: &Settle<V>) -> bool {
        let Some(redis) = self.redis() else {
            return false;
        };
        let names: Vec<String> = keys
            .iter()
            .map(|k| redis.key(&self.shared_key(*k)))
            .collect();
        let mut pipe = redis::pipe();
        match settle {
            Settle::Forgotten => {
                pipe.del(&names).ignore();
            }
            Settle::Final(value) => {
                let Ok(bytes) = serde_json::to_vec(value) else {
                    return false;
                };
                for name in names {
                    self.push_set(&mut pipe, name, &bytes, false);
                }
            }
        }
        let mut connection = redis.connection();
        let ok = redis.within(pipe.exec_async(&mut connection)).await.is_ok();
        if !ok {
            tracing::warn!(cache = self.name, "could not write shared entries");
        }
        ok
    }

    /// What Redis holds for `keys`, in one `MGET`, in their order: `None`
    /// where it holds nothing (or is away).
    async fn shared_get_many(&self, keys: &[Uuid]) -> Vec<Option<Option<V>>> {
        let unknown = || keys.iter().map(|_| None).collect();
        let Some(redis) = self.redis() else {
            return unknown();
        };
        let names: Vec<String> = keys
            .iter()
            .map(|key| redis.key(&self.shared_key(*key)))
            .collect();
        let mut connection = redis.connection();
        let mut mget = redis::cmd("MGET");
        mget.arg(&names);
        let found = redis
            .within(mget.query_async::<Vec<Option<Vec<u8>>>>(&mut connection))
            .await;
        match found {
            Ok(values) if values.len() == keys.len() => values
                .into_iter()
                .map(|bytes| serde_json::from_slice(&bytes?).ok())
                .collect(),
            _ => unknown(),
        }
    }

    /// Keeps loaded values in Redis, in one pipeline, unless another
    /// replica's loader got there first (`NX`): the first load stands until it
    /// expires or is invalidated.
    async fn shared_put_many<'a>(&self, values: impl IntoIterator<Item = (Uuid, &'a Option<V>)>) {
        let Some(redis) = self.redis() else {
            return;
        };
        let mut pipe = redis::pipe();
        for (key, value) in values {
            if let Ok(bytes) = serde_json::to_vec(value) {
                self.push_set(&mut pipe, redis.key(&self.shared_key(key)), &bytes, true);
            }
        }
        let mut connection = redis.connection();
        let _ = redis.within(pipe.exec_async(&mut connection)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_loader_that_finds_the_database_away_stays_unavailable() {
        let cache: TwoLevelCache<u32> = TwoLevelCache::new(
            "test",
            Freshness::Eventual,
            Capacity::Entries(10),
            Duration::from_secs(60),
            Duration::from_secs(60),
            None,
            Arc::new(crate::infra::pubsub::LocalPubSub::default()),
        );
        let away = cache
            .get_or_load(Uuid::now_v7(), || async {
                Err(AppError::Unavailable {
                    retry_after_secs: 2,
                    message: "away".into(),
                })
            })
            .await;
        assert!(
            matches!(
                away,
                Err(AppError::Unavailable {
                    retry_after_secs: 2,
                    ..
                })
            ),
            "{away:?}"
        );
    }
}
