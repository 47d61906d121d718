//! Which GraphQL requests over HTTP may read from the read replica
//! (`DATABASE_READ_URL`): queries, unless their viewer wrote lately.
//!
//! A replica lags the primary by a little, so a writer must not be sent there
//! right after writing. "Lately" is `KITH_READ_YOUR_WRITES_MILLIS` (5 s, well
//! above a healthy replica's lag): after a mutation the
//! viewer is marked (in this process, and in Redis for the other replicas),
//! and a token issued that recently (sign-up, sign-in, refresh: writes made
//! before the viewer had this token) counts too.

use std::time::Duration;

use uuid::Uuid;

use crate::{auth::TokenIssuer, infra::redis::Redis};

#[derive(Clone)]
pub struct RecentWriters {
    local: moka::sync::Cache<Uuid, ()>,
    shared: Option<Redis>,
    /// How long a writer's reads stay on the primary.
    window: Duration,
}

impl RecentWriters {
    pub fn new(shared: Option<&Redis>, window: Duration) -> Self {
        Self {
            local: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
            shared: shared.cloned(),
            window,
        }
    }

    /// The viewer of a token, unless they wrote lately (or have no token):
    /// `true` when their reads may go to the replica.
    pub async fn may_read_replica(&self, tokens: &TokenIssuer, token: Option<&str>) -> bool {
        let Some(claims) = token.and_then(|token| tokens.verify(token).ok()) else {
            // Anonymous (or refused anyway): nothing of theirs to read back.
            return token.is_none();
        };
        // `iat` counts whole seconds: round the window up to them.
        let issued_lately =
            chrono::Utc::now().timestamp() - claims.iat <= self.window.as_secs_f64().ceil() as i64;
        !(issued_lately || self.wrote_lately(claims.sub).await)
    }

    /// Marks the viewer of a token as having just written.
    pub async fn wrote(&self, tokens: &TokenIssuer, token: Option<&str>) {
        if let Some(claims) = token.and_then(|token| tokens.verify(token).ok()) {
            self.user_wrote(claims.sub).await;
        }
    }

    /// Marks a user as having just written (or being about to): in this
    /// process at once, and for the other replicas when the returned future
    /// has run.
    pub fn user_wrote(&self, user_id: Uuid) -> impl Future<Output = ()> + Send + 'static {
        self.local.insert(user_id, ());
        let shared = self.shared.clone().filter(|r| r.is_up());
        let window = self.window;
        async move {
            let Some(redis) = shared else {
                return;
            };
            let mut connection = redis.connection();
            let mut set = redis::cmd("SET");
            set.arg(redis.key(&format!("wrote:{user_id}")))
                .arg(1)
                .arg("PX")
                .arg(window.as_millis().max(1) as u64);
            let _ = redis.within(set.exec_async(&mut connection)).await;
        }
    }

    async fn wrote_lately(&self, user_id: Uuid) -> bool {
        if self.local.contains_key(&user_id) {
            return true;
        }
        let Some(redis) = self.shared.as_ref().filter(|r| r.is_up()) else {
            return false;
        };
        let mut connection = redis.connection();
        let mut exists = redis::cmd("EXISTS");
        exists.arg(redis.key(&format!("wrote:{user_id}")));
        // Unsure counts as yes: the primary is always right.
        redis
            .within(exists.query_async::<bool>(&mut connection))
            .await
            .unwrap_or(true)
    }
}
