//! The social graph: friend requests, friendships and blocks, and how two users
//! stand. Owns the `friend_requests`, `friendships` and `blocks` tables: only
//! these files name them in SQL. Other domains ask here "may these two
//! interact?" ([`Social::blocked_between`], [`check_reachable`]), and read how a
//! pair stands inside their own statements through the SQL [`standing`] gives
//! them (a send reads it in the statement that writes its message).
//!
//! - `requests`: asking, accepting, declining and withdrawing friend requests.
//! - `friends`: friendships, friend pages, suggestions, relationships as pages
//!   show them, and friend counts.
//! - `blocks`: blocking, unblocking, and the block rule every domain applies.
//! - `standing`: how a pair stands ([`Standing`]: blocks, friendship, a match
//!   current or ended), the SQL fragments that read it, and the policy of who
//!   may message whom ([`may_message`]).
//! - `graph`: the friend and block lists reads walk, cached.
//!
//! Every change to a pair runs in a transaction that first touches both users'
//! rows ([`lock_pair`]): on PostgreSQL that row-locks the pair, on SQLite it takes
//! the write lock, so concurrent requests, accepts and blocks on one pair are
//! serialised and each sees what the previous one committed.

mod blocks;
mod friends;
pub mod graph;
mod requests;
pub mod standing;

use entity::user;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    domain::{events::Events, outbox::Outbox},
    error::AppResult,
    infra::db::Db,
};

pub use blocks::{OwnBlock, any_block_between, check_reachable, judge_blocks, not_hidden_from};
pub use friends::{FriendListVisibility, Relationship, are_friends, forget_user};
pub use graph::Graph;
pub use requests::{FriendRequest, RequestStatus};
pub use standing::{
    EndedMatch, Standing, blocked_either_way_ids_sql, blocked_either_way_sql, end_match,
    may_message, read_standing,
};

#[derive(Clone)]
pub struct Social {
    db: Db,
    pubsub: Events,
    /// Friend counts live in users' rows: changed ones are forgotten here.
    profiles: crate::domain::users::Profiles,
    /// The lists reads walk; every write here forgets what it changed.
    graph: Graph,
    /// Friend requests, friendships and blocks, for services outside kith.
    outbox: Outbox,
}

impl Social {
    pub fn new(
        db: Db,
        pubsub: Events,
        profiles: crate::domain::users::Profiles,
        graph: Graph,
        outbox: Outbox,
    ) -> Self {
        Self {
            db,
            pubsub,
            profiles,
            graph,
            outbox,
        }
    }

    /// After a friendship between `a` and `b` began or ended: their counts and
    /// their friend lists changed.
    async fn forget_friendship(&self, a: Uuid, b: Uuid) {
        self.profiles.invalidate(&[a, b]).await;
        self.graph.forget_friends(&[a, b]).await;
    }

    /// After a request between `a` and `b` was made or ended, or one blocked
    /// the other.
    async fn forget_pending(&self, a: Uuid, b: Uuid) {
        self.graph.forget_pending_or_blocked(&[a, b]).await;
    }
}

/// A pair in canonical order (`low < high`), as pair-keyed tables store it.
pub fn ordered(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a < b { (a, b) } else { (b, a) }
}

/// Serialises changes to one pair (see the module docs). A no-op write on both
/// users' rows: it row-locks them on PostgreSQL and takes SQLite's write lock.
/// A direct message share-locks the same rows, so a block and a send are ordered.
pub async fn lock_pair(db: &impl ConnectionTrait, a: Uuid, b: Uuid) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, Expr::col(user::Column::UpdatedAt))
        .filter(user::Column::Id.is_in([a, b]))
        .exec(db)
        .await?;
    Ok(())
}

/// Locks one user's row as [`lock_pair`] does. A transaction that makes a user a
/// member of something takes it first (before any group's lock), so it waits for,
/// or holds off, the deletion of their account, which takes the same lock first.
pub async fn lock_user(db: &impl ConnectionTrait, id: Uuid) -> AppResult<()> {
    lock_pair(db, id, id).await
}

async fn user_exists(db: &impl ConnectionTrait, id: Uuid) -> AppResult<bool> {
    Ok(user::Entity::find_by_id(id).count(db).await? > 0)
}

/// The ids of a sorted list after `after` (all of them without one).
fn after_cursor(ids: &[Uuid], after: Option<Uuid>) -> &[Uuid] {
    let start = after.map_or(0, |after| ids.partition_point(|id| *id <= after));
    &ids[start..]
}

/// A page's fetch limit as a length.
fn limit_of(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}
