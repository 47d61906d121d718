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

use chrono::Utc;
use uuid::Uuid;

use crate::{domain::presence::Status, infra::redis::Redis};

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

/// What a user looks like to themselves, by their claims hash and chosen key:
/// defined at the top of each script that needs it.
const STATUS: &str = r"
local function status(claims_key, chosen_key, now)
  local connected = false
  local claims = redis.call('HGETALL', claims_key)
  for i = 1, #claims, 2 do
    if tonumber(claims[i + 1]) > now then connected = true end
  end
  local chosen = redis.call('GET', chosen_key)
  if chosen == 'OFFLINE' or not connected then return 'OFFLINE' end
  return chosen or 'ONLINE'
end
";

/// KEYS: the claims hash, the chosen key, the lapse index. ARGV: now (ms),
/// this replica, the change (`connect`, `leave`, `choose`), the chosen status
/// for `choose`, the claim's lapse (ms), the chosen key's TTL (ms), the claim's
/// name in the index, the claims hash's TTL (ms). Returns the status before
/// and after, as the user themselves sees it.
const CHANGE: &str = r"
local now = tonumber(ARGV[1])
local before = status(KEYS[1], KEYS[2], now)
if ARGV[3] == 'connect' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[7])
  if redis.call('GET', KEYS[2]) == 'OFFLINE' then redis.call('DEL', KEYS[2]) end
elseif ARGV[3] == 'leave' then
  redis.call('HDEL', KEYS[1], ARGV[2])
  redis.call('ZREM', KEYS[3], ARGV[7])
elseif ARGV[4] == 'ONLINE' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[6])
end
return { before, status(KEYS[1], KEYS[2], now) }
";

/// KEYS: the lapse index. ARGV: now (ms), the most claims to sweep, the
/// start of claims keys, the start of chosen keys. Each claim (`<user>|<replica>`)
/// that lapsed is removed, and its user's status before (the claim still
/// counted) and after is returned, flattened: user, before, after, ... A claim
/// renewed meanwhile is indexed anew instead.
const SWEEP: &str = r"
local now = tonumber(ARGV[1])
local out = {}
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(lapsed) do
  local bar = string.find(member, '|', 1, true)
  local user, replica = string.sub(member, 1, bar - 1), string.sub(member, bar + 1)
  local claims_key, chosen_key = ARGV[3] .. user, ARGV[4] .. user
  local lapse = redis.call('HGET', claims_key, replica)
  if lapse and tonumber(lapse) > now then
    redis.call('ZADD', KEYS[1], lapse, member)
  else
    redis.call('ZREM', KEYS[1], member)
    if lapse then
      local chosen = redis.call('GET', chosen_key)
      local before = 'ONLINE'
      if chosen then before = chosen end
      redis.call('HDEL', claims_key, replica)
      table.insert(out, user)
      table.insert(out, before)
      table.insert(out, status(claims_key, chosen_key, now))
    end
  end
end
return out
";

/// KEYS: the lapse index, then claims hashes. ARGV: this replica, the claims'
/// lapse (ms), their hashes' TTL (ms), and `1` to claim whatever is there
/// (after Redis was away, and may have lost them) or `0` to extend only claims
/// that still stand, so a renewal racing a leave does not bring the leaver
/// back; then each hash's claim name in the index.
const RENEW: &str = r"
for i = 2, #KEYS do
  local key = KEYS[i]
  if ARGV[4] == '1' or redis.call('HEXISTS', key, ARGV[1]) == 1 then
    redis.call('HSET', key, ARGV[1], ARGV[2])
    redis.call('PEXPIRE', key, ARGV[3])
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i + 3])
  end
end
return 0
";

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
            change: redis::Script::new(&format!("{STATUS}{CHANGE}")),
            renew: redis::Script::new(RENEW),
            sweep: redis::Script::new(&format!("{STATUS}{SWEEP}")),
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

    fn claim_name(&self, user_id: Uuid) -> String {
        format!("{user_id}|{}", self.replica)
    }

    /// Whether Redis answers; while it does not, presence is this replica's own.
    pub fn is_up(&self) -> bool {
        self.redis.is_up()
    }

    /// Applies `change`; returns the user's status before and after (as they
    /// see it themselves).
    pub async fn apply(&self, user_id: Uuid, change: Change) -> anyhow::Result<(Status, Status)> {
        let now = now_millis();
        let (name, chosen) = match change {
            Change::Connect => ("connect", ""),
            Change::Leave => ("leave", ""),
            Change::Choose(status) => ("choose", status.as_str()),
        };
        let mut invocation = self.change.key(self.claims_key(user_id));
        invocation
            .key(self.chosen_key(user_id))
            .key(self.lapses_key())
            .arg(now)
            .arg(&self.replica)
            .arg(name)
            .arg(chosen)
            .arg(now + self.claim_ttl.as_millis() as i64)
            .arg(CHOSEN_TTL.as_millis() as i64)
            .arg(self.claim_name(user_id))
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
        let mut pipe = redis::pipe();
        for &user_id in users {
            pipe.hgetall(self.claims_key(user_id))
                .get(self.chosen_key(user_id));
        }
        let mut connection = self.redis.connection();
        let replies: Vec<(HashMap<String, i64>, Option<String>)> = {
            let flat: Vec<redis::Value> =
                self.redis.within(pipe.query_async(&mut connection)).await?;
            flat.chunks(2)
                .map(|pair| -> anyhow::Result<_> {
                    Ok((
                        redis::from_redis_value_ref(&pair[0])?,
                        redis::from_redis_value_ref(&pair[1])?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?
        };
        let now = now_millis();
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
        let lapses = now_millis() + self.claim_ttl.as_millis() as i64;
        for chunk in users.chunks(500) {
            let mut invocation = self.renew.key(self.lapses_key());
            for &user_id in chunk {
                invocation.key(self.claims_key(user_id));
            }
            invocation
                .arg(&self.replica)
                .arg(lapses)
                .arg(self.hash_ttl_millis())
                .arg(if reclaim { "1" } else { "0" });
            for &user_id in chunk {
                invocation.arg(self.claim_name(user_id));
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
            .arg(now_millis())
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

fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}
