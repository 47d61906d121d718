//! Presence: who is online. A user is online while they have an open, signed-in
//! socket, and goes offline a grace period after their last one closes (a page
//! reload or a train tunnel is not a goodbye). `setPresence` chooses what others
//! see: AWAY, INVISIBLE (shown as OFFLINE to everyone else) or OFFLINE (until
//! the next socket), and ONLINE again. Changes are published on the user's
//! presence topic, which their friends' `presenceChanged` feeds listen to.
//!
//! Presence and `lastSeenAt` go only to whom the user allows
//! ([`PresenceVisibility`]: friends by default); everyone else, and every
//! signed-out reader, sees OFFLINE and no `lastSeenAt`, exactly as for someone
//! offline, so a hidden presence does not show that it is hidden.
//!
//! Each replica keeps a registry of its own sockets. With Redis, every
//! replica's claims meet in the shared store in Redis ([`shared_store`]), which
//! decides what is announced: online on any replica counts. Without Redis, or
//! while it is away, a replica's registry is the whole truth.
//!
//! Files: this one (the registry of sockets and what it announces), `status`
//! (a status, and what others see of it), `visibility` (who may see it),
//! `shared_store` (the replicas' claims in Redis), `feed` (the friends feed).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, SubsecRound, Utc};
use entity::user;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;
pub mod feed;
mod shared_store;
mod status;
mod visibility;

pub use self::feed::FriendPresence;
use self::shared_store::Change;
pub use self::shared_store::PresenceStore;
pub use self::status::Status;
use self::status::public;
pub use self::visibility::Reader;
// Who may see a user's presence: a profile setting, defined with the profile.
pub use crate::domain::users::PresenceVisibility;
use crate::{
    domain::{
        events::{Event, Events, presence_topic},
        users::Profiles,
    },
    infra::db::Db,
};

#[derive(Default)]
struct Entry {
    /// Open signed-in sockets.
    sockets: usize,
    /// The last socket closed and the grace period is running: still online.
    lingering: bool,
    /// What the user chose with `setPresence`, if anything.
    chosen: Option<Status>,
    /// Bumped on every connect, so a pending "offline after grace" that a new
    /// socket overtook knows to do nothing.
    generation: u64,
}

#[derive(Clone)]
pub struct Presence {
    /// This replica's sockets (and, without Redis, the whole truth).
    entries: Arc<Mutex<HashMap<Uuid, Entry>>>,
    /// With Redis: every replica's view, which decides what is announced.
    shared: Option<PresenceStore>,
    /// `lastSeenAt` lives in users' rows: a changed one is forgotten here.
    profiles: Profiles,
    pubsub: Events,
    db: Db,
    grace: Duration,
}

/// What the user looked like (to themselves) before and after a change.
type Shift = (Status, Status);

impl Presence {
    pub fn new(
        db: Db,
        pubsub: Events,
        grace: Duration,
        shared: Option<PresenceStore>,
        profiles: Profiles,
    ) -> Self {
        Self {
            profiles,
            entries: Arc::default(),
            shared,
            pubsub,
            db,
            grace,
        }
    }

    /// Whether statuses are read from the shared store (a round trip) rather
    /// than from this replica's own sockets (a lookup).
    pub fn is_shared(&self) -> bool {
        self.store().is_some()
    }

    /// The shared store, while Redis answers; otherwise this replica decides
    /// alone (degraded: users connected elsewhere look offline here).
    fn store(&self) -> Option<&PresenceStore> {
        self.shared.as_ref().filter(|store| store.is_up())
    }

    /// A signed-in socket opened, unless the user already holds `max` of them
    /// here (checked and counted in one step); the guard marks it closed when
    /// dropped.
    pub async fn try_connect(&self, user_id: Uuid, max: usize) -> Option<SocketPresence> {
        let store = self.store();
        let mut admitted = false;
        self.update(user_id, store.is_none(), |entry| {
            if entry.sockets >= max {
                return;
            }
            admitted = true;
            entry.sockets += 1;
            entry.lingering = false;
            entry.generation += 1;
            // A new socket ends a chosen OFFLINE.
            if entry.chosen == Some(Status::Offline) {
                entry.chosen = None;
            }
        });
        if !admitted {
            return None;
        }
        if let Some(store) = store {
            self.announce_shared(store, user_id, Change::Connect).await;
        }
        Some(SocketPresence {
            presence: self.clone(),
            user_id,
        })
    }

    /// What the user chose; returns the status as they now see it themselves.
    pub async fn set(&self, user_id: Uuid, status: Status) -> Status {
        let store = self.store();
        self.update(user_id, store.is_none(), |entry| {
            entry.chosen = (status != Status::Online).then_some(status);
        });
        match store {
            Some(store) => match self
                .announce_shared(store, user_id, Change::Choose(status))
                .await
            {
                Some((_, after)) => after,
                None => self.local_status(user_id),
            },
            None => self.local_status(user_id),
        }
    }

    /// The user's status as `viewer` sees it: INVISIBLE only to themselves.
    pub async fn status(&self, user_id: Uuid, viewer: Option<Uuid>) -> Status {
        let statuses = self.statuses(&[user_id], viewer).await;
        statuses.get(&user_id).copied().unwrap_or(Status::Offline)
    }

    /// [`Self::status`] of many users at once (one Redis round trip).
    pub async fn statuses(&self, users: &[Uuid], viewer: Option<Uuid>) -> HashMap<Uuid, Status> {
        let mut statuses = match self.store() {
            Some(store) => match store.statuses(users).await {
                Ok(statuses) => Some(statuses),
                Err(err) => {
                    tracing::warn!(error = %err, "reading shared presence; using this replica's");
                    None
                }
            },
            None => None,
        }
        .unwrap_or_else(|| users.iter().map(|&u| (u, self.local_status(u))).collect());
        for (user_id, status) in &mut statuses {
            if *status == Status::Invisible && viewer != Some(*user_id) {
                *status = Status::Offline;
            }
        }
        statuses
    }

    /// The user's status by this replica's sockets alone, as they see it.
    fn local_status(&self, user_id: Uuid) -> Status {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(&user_id).map_or(Status::Offline, effective)
    }

    /// The users this replica holds sockets of (or is in a grace period for):
    /// its claims to renew in the shared store.
    fn held_here(&self) -> Vec<Uuid> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .filter(|(_, entry)| entry.sockets > 0 || entry.lingering)
            .map(|(&user_id, _)| user_id)
            .collect()
    }

    /// Renews this replica's claims for as long as it runs (with Redis), so
    /// they outlive their lifetime only while the replica does, and sweeps
    /// claims that lapsed (any replica's), announcing who that took offline.
    pub async fn renew_claims(self) {
        let Some(store) = self.shared.clone() else {
            return;
        };
        // Side by side: announcing a large sweep (a database write each)
        // must not hold up this replica's own renewals.
        tokio::join!(self.renew(&store), self.sweep(&store));
    }

    async fn renew(&self, store: &PresenceStore) {
        let mut every = tokio::time::interval(store.renew_every());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Claim everything held here again after Redis was away, however
        // briefly (it may have restarted empty, or missed a connect), and
        // after a renewal failed.
        let mut claimed_through = None;
        loop {
            every.tick().await;
            if !store.is_up() {
                continue;
            }
            let outages = store.outages();
            let reclaim = claimed_through != Some(outages);
            match store.renew(&self.held_here(), reclaim).await {
                Ok(()) => claimed_through = Some(outages),
                Err(err) => {
                    claimed_through = None;
                    tracing::warn!(error = %err, "renewing presence claims");
                }
            }
        }
    }

    async fn sweep(&self, store: &PresenceStore) {
        let mut every = tokio::time::interval(store.renew_every());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if !store.is_up() {
                continue;
            }
            match store.sweep_lapsed().await {
                Ok(swept) => {
                    for (user_id, before, after) in swept {
                        self.announce_shift(user_id, (before, after), true).await;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "sweeping lapsed presence claims"),
            }
        }
    }

    /// A stopping replica gives up its claims (its sockets are closed):
    /// whoever was connected only here goes offline for others now, rather
    /// than staying ONLINE in their friends' feeds once the claims lapse
    /// unannounced.
    /// It waits `reconnects` first, for clients that reconnect elsewhere.
    pub async fn leave_all(&self, reconnects: Duration) {
        if self.store().is_none() {
            return;
        }
        tokio::time::sleep(reconnects).await;
        let Some(store) = self.store() else {
            return;
        };
        for user_id in self.held_here() {
            self.announce_shared(store, user_id, Change::Leave).await;
        }
    }

    fn disconnect(&self, user_id: Uuid) {
        let generation = {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let Some(entry) = entries.get_mut(&user_id) else {
                return;
            };
            entry.sockets = entry.sockets.saturating_sub(1);
            if entry.sockets > 0 {
                return;
            }
            entry.lingering = true;
            entry.generation
        };
        let presence = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(presence.grace).await;
            presence.go_offline(user_id, generation).await;
        });
    }

    /// After the grace period: offline here, unless a socket came back
    /// meanwhile; announced if that makes them offline for others. Whoever
    /// hears of it can read their lastSeenAt: it is written first.
    async fn go_offline(&self, user_id: Uuid, generation: u64) {
        let Some(seen_as) = self.still_leaving(user_id, generation) else {
            return;
        };
        match self.store() {
            // Alone, this replica knows whether they were visible as they go
            // (an invisible user's lastSeenAt must not give them away).
            None => {
                let seen = match seen_as {
                    Status::Offline => None,
                    _ => Some(self.record_last_seen(user_id).await),
                };
                self.finish_leaving(user_id, generation, seen, true);
            }
            // Shared, only the store knows (they may be online elsewhere, or
            // have chosen INVISIBLE through another replica).
            Some(store) => {
                if self.finish_leaving(user_id, generation, None, false) {
                    self.announce_shared(store, user_id, Change::Leave).await;
                }
            }
        }
    }

    async fn record_last_seen(&self, user_id: Uuid) -> DateTime<Utc> {
        let seen = Utc::now().trunc_subsecs(6);
        if let Err(err) = user::Entity::update_many()
            .col_expr(user::Column::LastSeenAt, Expr::value(seen))
            .filter(user::Column::Id.eq(user_id))
            .exec(&self.db)
            .await
        {
            tracing::warn!(error = %err, "recording last seen");
        }
        self.profiles.invalidate(&[user_id]).await;
        seen
    }

    /// What others see of a user whose grace period ran out, unless a socket
    /// came back since.
    fn still_leaving(&self, user_id: Uuid, generation: u64) -> Option<Status> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(&user_id)?;
        (entry.sockets == 0 && entry.generation == generation).then(|| public(effective(entry)))
    }

    /// Marks the user offline here (keeping only a lasting choice: INVISIBLE,
    /// AWAY); false if a socket came back meanwhile. When this replica decides
    /// alone it announces under the lock, so a reconnect's ONLINE comes after.
    fn finish_leaving(
        &self,
        user_id: Uuid,
        generation: u64,
        seen: Option<DateTime<Utc>>,
        announce: bool,
    ) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = entries.get_mut(&user_id) else {
            return false;
        };
        if entry.sockets > 0 || entry.generation != generation {
            return false;
        }
        let before = public(effective(entry));
        entry.lingering = false;
        if entry.chosen.is_none_or(|s| s == Status::Offline) {
            entries.remove(&user_id);
        }
        if announce && before != Status::Offline {
            self.publish(user_id, Status::Offline, seen);
        }
        true
    }

    /// Applies `change` to this replica's entry. When it decides alone
    /// (`announce`), it announces what others now see if that moved, under
    /// the lock, so one user's announcements go out in the order made.
    fn update(&self, user_id: Uuid, announce: bool, change: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(user_id).or_default();
        let before = public(effective(entry));
        change(entry);
        let after = public(effective(entry));
        if announce && before != after {
            self.publish(user_id, after, None);
        }
    }

    /// Applies `change` to the shared store and announces what others now see
    /// if it moved. `None` when Redis failed (this replica's view stands).
    async fn announce_shared(
        &self,
        store: &PresenceStore,
        user_id: Uuid,
        change: Change,
    ) -> Option<Shift> {
        match store.apply(user_id, change).await {
            Ok(shift) => {
                self.announce_shift(user_id, shift, matches!(change, Change::Leave))
                    .await;
                Some(shift)
            }
            Err(err) => {
                tracing::warn!(error = %err, "updating shared presence");
                None
            }
        }
    }

    /// Announces what others now see of the user, if that moved.
    async fn announce_shift(&self, user_id: Uuid, (before, after): Shift, leaving: bool) {
        let (before_public, after_public) = (public(before), public(after));
        if before_public == after_public {
            return;
        }
        // Gone for others (so they were visible, not invisible, as they
        // went): the one moment a lastSeenAt is kept.
        let seen = if leaving && after_public == Status::Offline {
            Some(self.record_last_seen(user_id).await)
        } else {
            None
        };
        self.publish(user_id, after_public, seen);
    }

    fn publish(&self, user_id: Uuid, status: Status, last_seen_at: Option<DateTime<Utc>>) {
        self.pubsub.publish(
            &presence_topic(user_id),
            Event::PresenceChanged {
                user_id,
                status,
                last_seen_at,
            },
        );
    }
}

/// What the entry amounts to, before hiding INVISIBLE from others: a chosen
/// OFFLINE, or no socket (and no grace period running), is offline; otherwise
/// the choice, or ONLINE.
fn effective(entry: &Entry) -> Status {
    let connected = entry.sockets > 0 || entry.lingering;
    match entry.chosen {
        Some(Status::Offline) => Status::Offline,
        _ if !connected => Status::Offline,
        Some(chosen) => chosen,
        None => Status::Online,
    }
}

/// Held for the life of a signed-in socket.
pub struct SocketPresence {
    presence: Presence,
    user_id: Uuid,
}

impl Drop for SocketPresence {
    fn drop(&mut self) {
        self.presence.disconnect(self.user_id);
    }
}
