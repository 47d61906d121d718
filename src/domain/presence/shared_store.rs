//! Presence shared by every replica, in Redis. Per user:
//! - `presence:<id>`, a hash with one field per replica holding a socket of
//!   theirs (or in its grace period), valued with when that claim lapses. Each
//!   replica renews its claims every third of the claim's lifetime.
//! - `presence-chosen:<id>`, what they chose with `setPresence` (none for
//!   ONLINE), which lasts across their connections.
//!
//! And one index of every claim by when it lapses, `presence-lapses`, which
//! every replica sweeps: a claim that lapsed (its replica died, or lost Redis
//! for longer than a claim lives) is removed there, and the user's friends
//! are told if that took them offline, so no feed shows a ghost.
//!
//! A user is connected while any claim is current. Each change runs as one
//! script, which answers what the user's status was before and after it, so
//! however many replicas change (or sweep) one user at once, each change is
//! announced by exactly the replica that made it.

use std::{collections::HashMap, time::Duration};

use uuid::Uuid;

use super::Status;
use crate::infra::redis::Redis;

/// A chosen AWAY or INVISIBLE is forgotten after this long unused.
const CHOSEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// The shortest claim lifetime allowed.
const MIN_CLAIM_TTL: Duration = Duration::from_millis(300);
/// Most lapsed claims one sweep removes.
const SWEEP_LIMIT: usize = 500;

/// A change to a user's presence.
#[derive(Clone, Copy, Debug)]
pub enum Change {
    /// This replica holds a socket of theirs now (which ends a chosen OFFLINE).
    Connect,
    /// This replica holds none any more (its grace period is over).
    Leave,
    /// They chose a status (ONLINE clears the choice).
    Choose(Status),
}

/// The start of every script: Redis's clock (one clock for every replica, so
/// a replica whose own runs fast cannot lapse the others' claims), and what
/// a user looks like to themselves by their claims hash and chosen key.
const PRELUDE: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local function status(claims_key, chosen_key)
  local connected = false
  local claims = redis.call('HGETALL', claims_key)
  for i = 1, #claims, 2 do
    if tonumber(claims[i + 1]) > now then connected = true end
  end
  local chosen = redis.call('GET', chosen_key)
  if chosen == 'OFFLINE' or not connected then return 'OFFLINE' end
  return chosen or 'ONLINE'
end
local function prune(claims_key, index_key, user)
  local claims = redis.call('HGETALL', claims_key)
  for i = 1, #claims, 2 do
    if tonumber(claims[i + 1]) <= now then
      redis.call('HDEL', claims_key, claims[i])
      redis.call('ZREM', index_key, user .. '|' .. claims[i])
    end
  end
end
";

/// KEYS: the claims hash, the chosen key, the lapse index. ARGV: this
/// replica, the change (`connect`, `leave`, `choose`), the chosen status for
/// `choose`, a claim's life (ms), the chosen key's TTL (ms), the user, the
/// claims hash's TTL (ms). Returns the status before and after, as the user
/// themselves sees it. Lapsed claims are pruned on the way (their user was
/// offline already, by every replica's reading).
const CHANGE: &str = r"
local before = status(KEYS[1], KEYS[2])
prune(KEYS[1], KEYS[3], ARGV[6])
local claim = ARGV[6] .. '|' .. ARGV[1]
if ARGV[2] == 'connect' then
  local lapse = now + tonumber(ARGV[4])
  redis.call('HSET', KEYS[1], ARGV[1], lapse)
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('ZADD', KEYS[3], lapse, claim)
  if redis.call('GET', KEYS[2]) == 'OFFLINE' then redis.call('DEL', KEYS[2]) end
elseif ARGV[2] == 'leave' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[3], claim)
elseif ARGV[3] == 'ONLINE' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[5])
end
return { before, status(KEYS[1], KEYS[2]) }
";

/// KEYS: the lapse index. ARGV: the most claims to sweep, the start of claims
/// keys, the start of chosen keys. Each claim (`<user>|<replica>`) that
/// lapsed is removed, with the rest of its user's lapsed claims, and the
/// user's status before (the claim still counted) and after is returned,
/// flattened: user, before, after, ... A claim renewed meanwhile is indexed
/// anew instead.
const SWEEP: &str = r"
local out = {}
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(lapsed) do
  local bar = string.find(member, '|', 1, true)
  local user, replica = string.sub(member, 1, bar - 1), string.sub(member, bar + 1)
  local claims_key, chosen_key = ARGV[2] .. user, ARGV[3] .. user
  local lapse = redis.call('HGET', claims_key, replica)
  if lapse and tonumber(lapse) > now then
    redis.call('ZADD', KEYS[1], lapse, member)
  else
    redis.call('ZREM', KEYS[1], member)
    if lapse then
      local chosen = redis.call('GET', chosen_key)
      local before = chosen or 'ONLINE'
      prune(claims_key, KEYS[1], user)
      table.insert(out, user)
      table.insert(out, before)
      table.insert(out, status(claims_key, chosen_key))
    end
  end
end
return out
";

/// KEYS: the lapse index, then claims hashes. ARGV: this replica, a claim's
/// life (ms), the hashes' TTL (ms), and `1` to claim whatever is there (after
/// Redis was away, and may have lost them) or `0` to extend only claims that
/// still stand, so a renewal racing a leave does not bring the leaver back;
/// then the user of each hash.
const RENEW: &str = r"
local lapse = now + tonumber(ARGV[2])
for i = 2, #KEYS do
  local key = KEYS[i]
  if ARGV[4] == '1' or redis.call('HEXISTS', key, ARGV[1]) == 1 then
    redis.call('HSET', key, ARGV[1], lapse)
    redis.call('PEXPIRE', key, ARGV[3])
    redis.call('ZADD', KEYS[1], lapse, ARGV[i + 3] .. '|' .. ARGV[1])
  end
end
return 0
";

/// One user's claims (replica to lapse) and choice, as Redis holds them.
type StoredPresence = (HashMap<String, i64>, Option<String>);

#[derive(Clone)]
pub struct PresenceStore {
    redis: Redis,
    /// This replica's name in the claims.
    replica: String,
    /// How long a claim holds without renewal.
    claim_ttl: Duration,
    change: redis::Script,
    renew: redis::Script,
    sweep: redis::Script,
}

impl PresenceStore {
    /// A store whose claims hold `claim_ttl` unless renewed.
    pub fn new(redis: &Redis, claim_ttl: Duration) -> Self {
        Self {
            redis: redis.clone(),
            replica: Uuid::now_v7().simple().to_string(),
            // Renewed every third of it: anything shorter would mostly renew.
            claim_ttl: claim_ttl.max(MIN_CLAIM_TTL),
            change: redis::Script::new(&format!("{PRELUDE}{CHANGE}")),
            renew: redis::Script::new(&format!("{PRELUDE}{RENEW}")),
            sweep: redis::Script::new(&format!("{PRELUDE}{SWEEP}")),
        }
    }

    /// How often claims are renewed (and lapsed ones swept): three times a
    /// claim's life, so one slow round does not let a live claim lapse.
    pub fn renew_every(&self) -> Duration {
        self.claim_ttl / 3
    }

    /// A claims hash outlives its claims, so the sweep still finds what lapsed.
    fn hash_ttl_millis(&self) -> i64 {
        2 * self.claim_ttl.as_millis() as i64
    }

    /// Whether Redis answers; while it does not, presence is this replica's own.
    pub fn is_up(&self) -> bool {
        self.redis.is_up()
    }

    /// See [`Redis::outages`].
    pub fn outages(&self) -> u64 {
        self.redis.outages()
    }

    /// Applies `change`; returns the user's status before and after (as they
    /// see it themselves).
    pub async fn apply(&self, user_id: Uuid, change: Change) -> anyhow::Result<(Status, Status)> {
        let (name, chosen) = match change {
            Change::Connect => ("connect", ""),
            Change::Leave => ("leave", ""),
            Change::Choose(status) => ("choose", status.as_str()),
        };
        let mut invocation = self.change.key(self.claims_key(user_id));
        invocation
            .key(self.chosen_key(user_id))
            .key(self.lapses_key())
            .arg(&self.replica)
            .arg(name)
            .arg(chosen)
            .arg(self.claim_ttl.as_millis() as i64)
            .arg(CHOSEN_TTL.as_millis() as i64)
            .arg(user_id.to_string())
            .arg(self.hash_ttl_millis());
        let mut connection = self.redis.connection();
        let (before, after): (String, String) = self
            .redis
            .within(invocation.invoke_async(&mut connection))
            .await?;
        Ok((Status::parse(&before)?, Status::parse(&after)?))
    }

    /// The users' statuses as they see them themselves, in one round trip.
    pub async fn statuses(&self, users: &[Uuid]) -> anyhow::Result<HashMap<Uuid, Status>> {
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        // Claims lapse by Redis's clock: read it in the same round trip.
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        for &user_id in users {
            pipe.hgetall(self.claims_key(user_id))
                .get(self.chosen_key(user_id));
        }
        let mut connection = self.redis.connection();
        let (now, replies): (i64, Vec<StoredPresence>) = {
            let flat: Vec<redis::Value> =
                self.redis.within(pipe.query_async(&mut connection)).await?;
            let Some((time, flat)) = flat.split_first() else {
                anyhow::bail!("Redis answered nothing");
            };
            let (seconds, micros): (i64, i64) = redis::from_redis_value_ref(time)?;
            let replies = flat
                .chunks(2)
                .map(|pair| -> anyhow::Result<_> {
                    Ok((
                        redis::from_redis_value_ref(&pair[0])?,
                        redis::from_redis_value_ref(&pair[1])?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?;
            (seconds * 1000 + micros / 1000, replies)
        };
        users
            .iter()
            .zip(replies)
            .map(|(&user_id, (claims, chosen))| {
                let connected = claims.values().any(|&lapses| lapses > now);
                let status = match chosen.as_deref().map(Status::parse).transpose()? {
                    Some(Status::Offline) => Status::Offline,
                    _ if !connected => Status::Offline,
                    Some(chosen) => chosen,
                    None => Status::Online,
                };
                Ok((user_id, status))
            })
            .collect()
    }

    /// Renews this replica's claims on `users`: those that still stand, or
    /// all of them when `reclaim` (Redis was away and may have lost them).
    pub async fn renew(&self, users: &[Uuid], reclaim: bool) -> anyhow::Result<()> {
        for chunk in users.chunks(500) {
            let mut invocation = self.renew.key(self.lapses_key());
            for &user_id in chunk {
                invocation.key(self.claims_key(user_id));
            }
            invocation
                .arg(&self.replica)
                .arg(self.claim_ttl.as_millis() as i64)
                .arg(self.hash_ttl_millis())
                .arg(if reclaim { "1" } else { "0" });
            for &user_id in chunk {
                invocation.arg(user_id.to_string());
            }
            let mut connection = self.redis.connection();
            let _: i64 = self
                .redis
                .within(invocation.invoke_async(&mut connection))
                .await?;
        }
        Ok(())
    }

    /// Removes claims that lapsed, whichever replica made them; returns each
    /// swept user's status before and after (as they see it themselves).
    pub async fn sweep_lapsed(&self) -> anyhow::Result<Vec<(Uuid, Status, Status)>> {
        let mut invocation = self.sweep.key(self.lapses_key());
        invocation
            .arg(SWEEP_LIMIT)
            .arg(self.redis.key("presence:"))
            .arg(self.redis.key("presence-chosen:"));
        let mut connection = self.redis.connection();
        let flat: Vec<String> = self
            .redis
            .within(invocation.invoke_async(&mut connection))
            .await?;
        flat.chunks_exact(3)
            .map(|swept| {
                Ok((
                    swept[0].parse()?,
                    Status::parse(&swept[1])?,
                    Status::parse(&swept[2])?,
                ))
            })
            .collect()
    }

    fn lapses_key(&self) -> String {
        self.redis.key("presence-lapses")
    }

    fn claims_key(&self, user_id: Uuid) -> String {
        self.redis.key(&format!("presence:{user_id}"))
    }

    fn chosen_key(&self, user_id: Uuid) -> String {
        self.redis.key(&format!("presence-chosen:{user_id}"))
    }
}
