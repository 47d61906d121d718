//! Presence: who is online. A user is online while they have an open, signed-in
//! socket, and goes offline a grace period after their last one closes (a page
//! reload or a train tunnel is not a goodbye). `setPresence` chooses what others
//! see: AWAY, INVISIBLE (shown as OFFLINE to everyone else) or OFFLINE (until
//! the next socket), and ONLINE again. Changes are published on the user's
//! presence topic, which their friends' `presenceChanged` feeds listen to.
//!
//! The registry lives in this process: with several replicas each knows its
//! own sockets (the scale-out issue moves it to Redis with TTLs).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, SubsecRound, Utc};
use entity::user;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, sea_query::Expr};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::pubsub::{Event, PubSub, presence_topic};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Online,
    Away,
    /// Online, but shown as OFFLINE to everyone else.
    Invisible,
    Offline,
}

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
    entries: Arc<Mutex<HashMap<Uuid, Entry>>>,
    pubsub: Arc<dyn PubSub>,
    db: DatabaseConnection,
    grace: Duration,
}

impl Presence {
    pub fn new(db: DatabaseConnection, pubsub: Arc<dyn PubSub>, grace: Duration) -> Self {
        Self {
            entries: Arc::default(),
            pubsub,
            db,
            grace,
        }
    }

    /// A signed-in socket opened, unless the user already holds `max` of them
    /// (checked and counted in one step); the guard marks it closed when dropped.
    pub fn try_connect(&self, user_id: Uuid, max: usize) -> Option<SocketPresence> {
        let mut admitted = false;
        self.update(user_id, |entry| {
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
        admitted.then(|| SocketPresence {
            presence: self.clone(),
            user_id,
        })
    }

    /// What the user chose; returns the status as they now see it themselves.
    pub fn set(&self, user_id: Uuid, status: Status) -> Status {
        self.update(user_id, |entry| {
            entry.chosen = (status != Status::Online).then_some(status);
        });
        self.status(user_id, Some(user_id))
    }

    /// The user's status as `viewer` sees it: INVISIBLE only to themselves.
    pub fn status(&self, user_id: Uuid, viewer: Option<Uuid>) -> Status {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let status = entries.get(&user_id).map_or(Status::Offline, effective);
        if status == Status::Invisible && viewer != Some(user_id) {
            Status::Offline
        } else {
            status
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

    /// After the grace period: offline, unless a socket came back meanwhile.
    async fn go_offline(&self, user_id: Uuid, generation: u64) {
        // Visible to others as they go? Only then is there a lastSeenAt to keep
        // (an invisible user's must not give them away).
        match self.still_leaving(user_id, generation) {
            None => return,
            Some(Status::Offline) => {
                self.finish_leaving(user_id, generation, None);
                return;
            }
            Some(_) => {}
        }
        let seen = Utc::now().trunc_subsecs(6);
        if let Err(err) = user::Entity::update_many()
            .col_expr(user::Column::LastSeenAt, Expr::value(seen))
            .filter(user::Column::Id.eq(user_id))
            .exec(&self.db)
            .await
        {
            tracing::warn!(error = %err, "recording last seen");
        }
        self.finish_leaving(user_id, generation, Some(seen));
    }

    /// What others see of a user whose grace period ran out, unless a socket
    /// came back since.
    fn still_leaving(&self, user_id: Uuid, generation: u64) -> Option<Status> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(&user_id)?;
        (entry.sockets == 0 && entry.generation == generation).then(|| public(effective(entry)))
    }

    /// Marks the user offline (keeping only a lasting choice: INVISIBLE, AWAY)
    /// and announces it, under the lock, so a reconnect's ONLINE comes after;
    /// nothing if a socket came back meanwhile.
    fn finish_leaving(&self, user_id: Uuid, generation: u64, seen: Option<DateTime<Utc>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = entries.get_mut(&user_id) else {
            return;
        };
        if entry.sockets > 0 || entry.generation != generation {
            return;
        }
        let before = public(effective(entry));
        entry.lingering = false;
        if entry.chosen.is_none_or(|s| s == Status::Offline) {
            entries.remove(&user_id);
        }
        if before != Status::Offline {
            self.publish(user_id, Status::Offline, seen);
        }
    }

    /// Applies `change`, and announces what others now see if it moved. The
    /// announcement is made under the lock, so announcements of one user's
    /// changes go out in the order the changes were made.
    fn update(&self, user_id: Uuid, change: impl FnOnce(&mut Entry)) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.entry(user_id).or_default();
        let before = public(effective(entry));
        change(entry);
        let after = public(effective(entry));
        if before != after {
            self.publish(user_id, after, None);
        }
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

/// What everyone else sees.
fn public(status: Status) -> Status {
    if status == Status::Invisible {
        Status::Offline
    } else {
        status
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
