//! Presence shared by every replica, in Redis. Per user:
//! - `presence:<id>`, a hash with one field per replica holding a socket of
//!   theirs (or in its grace period), valued with when that claim lapses. Each
//!   replica renews its claims every [`RENEW_EVERY`], so a replica that dies
//!   stops counting within [`CLAIM_TTL`] without anyone cleaning up after it.
//! - `presence-chosen:<id>`, what they chose with `setPresence` (none for
//!   ONLINE), which lasts across their connections.
//!
//! A user is connected while any claim is current. Each change runs as one
//! script, which answers what the user's status was before and after it, so
//! however many replicas change one user at once, each change is announced by
//! exactly the replica that made it.

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use uuid::Uuid;

use crate::{domain::presence::Status, infra::redis::Redis};

/// How long a replica's claim on a user holds without renewal.
pub const CLAIM_TTL: Duration = Duration::from_secs(30);
/// How often a replica renews its claims.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// A chosen AWAY or INVISIBLE is forgotten after this long unused.
const CHOSEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

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

/// KEYS: the claims hash, the chosen key. ARGV: now (ms), this replica, the
/// change (`connect`, `leave`, `choose`), the chosen status for `choose`, the
/// claim's lapse (ms), the chosen key's TTL (ms). Returns the status before
/// and after, as the user themselves sees it.
const CHANGE: &str = r"
local now = tonumber(ARGV[1])
local function status()
  local connected = false
  local claims = redis.call('HGETALL', KEYS[1])
  for i = 1, #claims, 2 do
    if tonumber(claims[i + 1]) > now then
      connected = true
    else
      redis.call('HDEL', KEYS[1], claims[i])
    end
  end
  local chosen = redis.call('GET', KEYS[2])
  if chosen == 'OFFLINE' or not connected then return 'OFFLINE' end
  return chosen or 'ONLINE'
end
local before = status()
if ARGV[3] == 'connect' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[5]) - now)
  if redis.call('GET', KEYS[2]) == 'OFFLINE' then redis.call('DEL', KEYS[2]) end
elseif ARGV[3] == 'leave' then
  redis.call('HDEL', KEYS[1], ARGV[2])
elseif ARGV[4] == 'ONLINE' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[6])
end
return { before, status() }
";

/// KEYS: claims hashes. ARGV: this replica, the claims' lapse (ms), their
/// key's TTL (ms), and `1` to claim whatever is there (after Redis was away,
/// and may have lost them) or `0` to extend only claims that still stand, so
/// a renewal racing a leave does not bring the leaver back.
const RENEW: &str = r"
for _, key in ipairs(KEYS) do
  if ARGV[4] == '1' or redis.call('HEXISTS', key, ARGV[1]) == 1 then
    redis.call('HSET', key, ARGV[1], ARGV[2])
    redis.call('PEXPIRE', key, ARGV[3])
  end
end
return 0
";

#[derive(Clone)]
pub struct PresenceStore {
    redis: Redis,
    /// This replica's name in the claims.
    replica: String,
    change: redis::Script,
    renew: redis::Script,
}

impl PresenceStore {
    pub fn new(redis: &Redis) -> Self {
        Self {
            redis: redis.clone(),
            replica: Uuid::now_v7().to_string(),
            change: redis::Script::new(CHANGE),
            renew: redis::Script::new(RENEW),
        }
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
            .arg(now)
            .arg(&self.replica)
            .arg(name)
            .arg(chosen)
            .arg(now + CLAIM_TTL.as_millis() as i64)
            .arg(CHOSEN_TTL.as_millis() as i64);
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
        let lapses = now_millis() + CLAIM_TTL.as_millis() as i64;
        for chunk in users.chunks(500) {
            let mut invocation = self.renew.prepare_invoke();
            for &user_id in chunk {
                invocation.key(self.claims_key(user_id));
            }
            invocation
                .arg(&self.replica)
                .arg(lapses)
                .arg(CLAIM_TTL.as_millis() as i64)
                .arg(if reclaim { "1" } else { "0" });
            let mut connection = self.redis.connection();
            let _: i64 = self
                .redis
                .within(invocation.invoke_async(&mut connection))
                .await?;
        }
        Ok(())
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
