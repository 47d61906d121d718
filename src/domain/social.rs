//! The social graph: friend requests, friendships and blocks. Owns the
//! `friend_requests`, `friendships` and `blocks` tables, and is the one place other
//! domains ask "may these two interact?" ([`Social::blocked_between`]).
//!
//! Every change to a pair runs in a transaction that first touches both users'
//! rows ([`lock_pair`]): on PostgreSQL that row-locks the pair, on SQLite it takes
//! the write lock, so concurrent requests, accepts and blocks on one pair are
//! serialised and each sees what the previous one committed.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use entity::{block, friend_request, friendship, user};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait, TryInsertResult,
    sea_query::{Alias, Expr, ExprTrait, IntoIden, Query, UnionType},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::db::Db;
use crate::{
    domain::events::{Event, Events, user_topic},
    domain::{
        discovery,
        graph::{self, Graph},
    },
    error::{AppError, AppResult, is_unique_violation},
};

const MAX_MESSAGE_CHARS: usize = 500;

/// How the viewer stands to another user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relationship {
    Myself,
    None,
    Friends,
    RequestSent,
    RequestReceived,
    /// The viewer blocked them.
    Blocked,
}

// Who may see a user's friend list: a profile setting, defined with the
// profile (in `users`).
pub use crate::domain::users::FriendListVisibility;

/// A friend request as the client sees it, also after it was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequest {
    pub id: Uuid,
    pub from: Uuid,
    pub to: Uuid,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub status: RequestStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    Pending,
    Accepted,
    Declined,
    Cancelled,
}

impl FriendRequest {
    fn from_row(row: friend_request::Model, status: RequestStatus) -> Self {
        Self {
            id: row.id,
            from: row.from_user_id,
            to: row.to_user_id,
            message: row.message,
            created_at: row.created_at,
            status,
        }
    }
}

#[derive(Clone)]
pub struct Social {
    db: Db,
    pubsub: Events,
    /// Friend counts live in users' rows: changed ones are forgotten here.
    profiles: crate::domain::users::Profiles,
    /// The lists reads walk; every write here forgets what it changed.
    graph: Graph,
}

impl Social {
    pub fn new(
        db: Db,
        pubsub: Events,
        profiles: crate::domain::users::Profiles,
        graph: Graph,
    ) -> Self {
        Self {
            db,
            pubsub,
            profiles,
            graph,
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

    /// Asks `to` to be friends. Asking again returns the same pending request; asking
    /// someone who already asked you accepts theirs and returns it, accepted.
    pub async fn send_request(
        &self,
        from: Uuid,
        to: Uuid,
        message: Option<String>,
    ) -> AppResult<FriendRequest> {
        if from == to {
            return Err(AppError::bad_input(
                "userId",
                "you cannot befriend yourself",
            ));
        }
        let message = match message.as_deref().map(str::trim) {
            Some(m) if m.chars().count() > MAX_MESSAGE_CHARS => {
                return Err(AppError::bad_input(
                    "message",
                    format!("message must be at most {MAX_MESSAGE_CHARS} characters"),
                ));
            }
            Some("") | None => None,
            Some(m) => Some(m.to_owned()),
        };
        let txn = self.db.begin().await?;
        lock_pair(&txn, from, to).await?;
        check_reachable(&txn, from, to, OwnBlock::Refuse).await?;
        if are_friends(&txn, from, to).await? {
            return Err(AppError::conflict("userId", "you are already friends"));
        }
        if let Some(existing) = pending_between(&txn, from, to).await? {
            if existing.from_user_id == from {
                return Ok(FriendRequest::from_row(existing, RequestStatus::Pending));
            }
            // They asked first: this is a yes.
            let accepted = accept_row(&txn, existing).await?;
            txn.commit().await?;
            self.announce_accepted(&accepted).await;
            return Ok(accepted);
        }
        let (low, high) = ordered(from, to);
        let row = friend_request::ActiveModel {
            id: Set(Uuid::now_v7()),
            from_user_id: Set(from),
            to_user_id: Set(to),
            pair_low: Set(low),
            pair_high: Set(high),
            message: Set(message),
            created_at: Set(Utc::now()),
        };
        let inserted = friend_request::Entity::insert(row)
            .exec_with_returning(&txn)
            .await
            .map_err(|err| {
                // The pair lock makes this unreachable; the unique key is the
                // last line of defence, and says so clearly if it ever fires.
                if is_unique_violation(&err) {
                    AppError::conflict("userId", "a request between you is already pending")
                } else {
                    err.into()
                }
            })?;
        txn.commit().await?;
        self.forget_pending(from, to).await;
        let request = FriendRequest::from_row(inserted, RequestStatus::Pending);
        self.pubsub.publish(
            &user_topic(to),
            Event::FriendRequestReceived {
                request: request.clone(),
            },
        );
        Ok(request)
    }

    /// Accepts a request sent to `viewer`; `NOT_FOUND` when there is none (any more).
    pub async fn accept_request(&self, viewer: Uuid, request_id: Uuid) -> AppResult<FriendRequest> {
        let request = self.request_to(viewer, request_id).await?;
        let txn = self.db.begin().await?;
        lock_pair(&txn, request.from_user_id, viewer).await?;
        // Re-read under the lock: a cancel or a block may have won the race.
        let request = friend_request::Entity::find_by_id(request_id)
            .one(&txn)
            .await?
            .ok_or_else(request_not_found)?;
        let accepted = accept_row(&txn, request).await?;
        txn.commit().await?;
        self.announce_accepted(&accepted).await;
        Ok(accepted)
    }

    /// Declines a request sent to `viewer`.
    pub async fn decline_request(
        &self,
        viewer: Uuid,
        request_id: Uuid,
    ) -> AppResult<FriendRequest> {
        let request = self.request_to(viewer, request_id).await?;
        self.remove_request(request, RequestStatus::Declined).await
    }

    /// Withdraws a request `viewer` sent.
    pub async fn cancel_request(&self, viewer: Uuid, request_id: Uuid) -> AppResult<FriendRequest> {
        let request = friend_request::Entity::find_by_id(request_id)
            .one(&self.db)
            .await?
            .filter(|r| r.from_user_id == viewer)
            .ok_or_else(request_not_found)?;
        self.remove_request(request, RequestStatus::Cancelled).await
    }

    /// Ends a friendship; ending one that does not exist changes nothing.
    pub async fn remove_friend(&self, viewer: Uuid, other: Uuid) -> AppResult<()> {
        if viewer == other {
            return Err(AppError::bad_input("userId", "you are not your own friend"));
        }
        let txn = self.db.begin().await?;
        lock_pair(&txn, viewer, other).await?;
        check_reachable(&txn, viewer, other, OwnBlock::Allow).await?;
        delete_friendship(&txn, viewer, other).await?;
        txn.commit().await?;
        self.forget_friendship(viewer, other).await;
        Ok(())
    }

    /// Blocks `other`: ends the friendship and pending requests both ways, in the
    /// same transaction. Blocking again changes nothing.
    pub async fn block(&self, viewer: Uuid, other: Uuid) -> AppResult<()> {
        if viewer == other {
            return Err(AppError::bad_input("userId", "you cannot block yourself"));
        }
        let txn = self.db.begin().await?;
        lock_pair(&txn, viewer, other).await?;
        check_reachable(&txn, viewer, other, OwnBlock::Allow).await?;
        delete_friendship(&txn, viewer, other).await?;
        let (low, high) = ordered(viewer, other);
        friend_request::Entity::delete_many()
            .filter(friend_request::Column::PairLow.eq(low))
            .filter(friend_request::Column::PairHigh.eq(high))
            .exec(&txn)
            .await?;
        // A block ends a match for good, as unmatching does.
        let ended_match = discovery::end_matches_between(&txn, viewer, other).await?;
        block::Entity::insert(block::ActiveModel {
            blocker_id: Set(viewer),
            blocked_id: Set(other),
            created_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        self.forget_friendship(viewer, other).await;
        self.forget_pending(viewer, other).await;
        self.graph.forget_blockers(&[other]).await;
        let event = Event::Blocked {
            blocker: viewer,
            blocked: other,
        };
        self.pubsub.publish(&user_topic(viewer), event.clone());
        self.pubsub.publish(&user_topic(other), event);
        if let Some(ended) = ended_match {
            discovery::announce_match_ended(&self.pubsub, &ended);
        }
        Ok(())
    }

    /// Lifts the viewer's block; lifting none changes nothing. A user who blocked
    /// the viewer is `NOT_FOUND`, as everywhere.
    pub async fn unblock(&self, viewer: Uuid, other: Uuid) -> AppResult<()> {
        check_reachable(&self.db, viewer, other, OwnBlock::Allow).await?;
        block::Entity::delete_many()
            .filter(block::Column::BlockerId.eq(viewer))
            .filter(block::Column::BlockedId.eq(other))
            .exec(&self.db)
            .await?;
        self.graph.forget_blockers(&[other]).await;
        self.graph.forget_pending_or_blocked(&[viewer]).await;
        Ok(())
    }

    /// Whether either user blocked the other: the rule every domain asks before
    /// letting two users interact (messages, matches, invitations).
    pub async fn blocked_between(&self, a: Uuid, b: Uuid) -> AppResult<bool> {
        any_block_between(&self.db, a, b).await
    }

    /// Whether `target` blocked `viewer`, which hides `target` from `viewer` entirely.
    pub async fn hides_from(&self, target: Uuid, viewer: Uuid) -> AppResult<bool> {
        Ok(block::Entity::find_by_id((target, viewer))
            .one(&self.db)
            .await?
            .is_some())
    }

    pub async fn are_friends(&self, a: Uuid, b: Uuid) -> AppResult<bool> {
        are_friends(&self.db, a, b).await
    }

    /// May `viewer` (anonymous when `None`) see `owner`'s friend list?
    pub async fn may_see_friends(
        &self,
        owner: &user::Model,
        viewer: Option<Uuid>,
    ) -> AppResult<bool> {
        if viewer == Some(owner.id) {
            return Ok(true);
        }
        Ok(
            match FriendListVisibility::from_stored(&owner.friend_list_visibility) {
                FriendListVisibility::Everyone => true,
                FriendListVisibility::OnlyMe => false,
                // A permission: from the database, not the cached lists.
                FriendListVisibility::Friends => match viewer {
                    Some(viewer) => are_friends(&self.db, owner.id, viewer).await?,
                    None => false,
                },
            },
        )
    }

    /// A page of `owner`'s friends in id order after `after`, leaving out anyone
    /// who blocked `viewer`. Fetches `limit` ids.
    pub async fn friends(
        &self,
        owner: Uuid,
        viewer: Option<Uuid>,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Uuid>> {
        let friends = self.graph.friends_of(owner).await?;
        let hidden = match viewer {
            Some(viewer) => self.graph.blockers_of(viewer).await?,
            None => Arc::from([]),
        };
        Ok(after_cursor(&friends, after)
            .iter()
            .copied()
            .filter(|id| !graph::holds(&hidden, *id))
            .take(limit_of(limit))
            .collect())
    }

    /// A page of the friends `viewer` and `other` share, in id order.
    pub async fn mutual_friends(
        &self,
        viewer: Uuid,
        other: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Uuid>> {
        let lists = self.graph.friends_of_many(&[viewer, other]).await?;
        let (Some(mine), Some(theirs)) = (lists.get(&viewer), lists.get(&other)) else {
            return Ok(Vec::new());
        };
        Ok(graph::shared(after_cursor(mine, after), theirs)
            .take(limit_of(limit))
            .collect())
    }

    /// Pending requests sent to (`incoming`) or by the viewer, newest first.
    pub async fn requests(
        &self,
        viewer: Uuid,
        incoming: bool,
        before: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<FriendRequest>> {
        let column = if incoming {
            friend_request::Column::ToUserId
        } else {
            friend_request::Column::FromUserId
        };
        let mut query = friend_request::Entity::find().filter(column.eq(viewer));
        if let Some(before) = before {
            // Ids are time-ordered (UUIDv7): newest first is descending id.
            query = query.filter(friend_request::Column::Id.lt(before));
        }
        Ok(query
            .order_by_desc(friend_request::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| FriendRequest::from_row(row, RequestStatus::Pending))
            .collect())
    }

    /// A pending request the viewer sent or received.
    pub async fn request_for(
        &self,
        viewer: Uuid,
        request_id: Uuid,
    ) -> AppResult<Option<FriendRequest>> {
        Ok(friend_request::Entity::find_by_id(request_id)
            .one(&self.db)
            .await?
            .filter(|r| r.from_user_id == viewer || r.to_user_id == viewer)
            .map(|row| FriendRequest::from_row(row, RequestStatus::Pending)))
    }

    /// The users the viewer blocked, in id order.
    pub async fn blocked_users(
        &self,
        viewer: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Uuid>> {
        let mut query = block::Entity::find()
            .select_only()
            .column(block::Column::BlockedId)
            .filter(block::Column::BlockerId.eq(viewer));
        if let Some(after) = after {
            query = query.filter(block::Column::BlockedId.gt(after));
        }
        Ok(query
            .order_by_asc(block::Column::BlockedId)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Friends of friends, most mutual friends first (then by id): never the
    /// viewer, a friend, anyone blocked either way, or anyone with a pending
    /// request either way.
    pub async fn suggestions(&self, viewer: Uuid, limit: u64) -> AppResult<Vec<(Uuid, i64)>> {
        let friends = self.graph.friends_of(viewer).await?;
        let blockers = self.graph.blockers_of(viewer).await?;
        let excluded = self.graph.pending_or_blocked_of(viewer).await?;
        let candidates = self
            .graph
            .friends_of_friends(viewer, |id| {
                id != viewer
                    && !graph::holds(&friends, id)
                    && !graph::holds(&blockers, id)
                    && !graph::holds(&excluded, id)
            })
            .await?;
        let mut ranked: Vec<(Uuid, i64)> = candidates.into_iter().collect();
        let best_first = |a: &(Uuid, i64), b: &(Uuid, i64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        let limit = limit_of(limit);
        if ranked.len() > limit && limit > 0 {
            ranked.select_nth_unstable_by(limit - 1, best_first);
        }
        ranked.truncate(limit);
        ranked.sort_unstable_by(best_first);
        Ok(ranked)
    }

    /// How many friends `viewer` shares with each of `others`.
    pub async fn mutual_counts(
        &self,
        viewer: Uuid,
        others: &[Uuid],
    ) -> AppResult<HashMap<Uuid, i64>> {
        self.graph.mutual_counts(viewer, others).await
    }

    /// How `viewer` stands to each of `others`, as pages show it. The viewer's
    /// friends are known from the viewer's friend list (a block ends a
    /// friendship, and a request between friends is refused); for the rest,
    /// one query whatever their number: the union of the viewer's
    /// friendships, blocks and requests among them.
    pub async fn relationships(
        &self,
        viewer: Uuid,
        others: &[Uuid],
    ) -> AppResult<HashMap<Uuid, Relationship>> {
        let list = self.graph.friends_of(viewer).await?;
        let (friends, rest): (Vec<Uuid>, Vec<Uuid>) = others
            .iter()
            .partition(|other| graph::holds(&list, **other));
        let mut found = self.relationships_in_db(viewer, &rest).await?;
        found.extend(
            friends
                .into_iter()
                .map(|friend| (friend, Relationship::Friends)),
        );
        Ok(found)
    }

    async fn relationships_in_db(
        &self,
        viewer: Uuid,
        others: &[Uuid],
    ) -> AppResult<HashMap<Uuid, Relationship>> {
        if others.is_empty() {
            return Ok(HashMap::new());
        }
        #[derive(FromQueryResult)]
        struct Tie {
            other: Uuid,
            kind: String,
        }
        // (table, the viewer's column, the other's column, what a row means)
        let ties = [
            (
                friendship::Entity.into_iden(),
                "user_id",
                "friend_id",
                "friends",
            ),
            (
                block::Entity.into_iden(),
                "blocker_id",
                "blocked_id",
                "blocked",
            ),
            (
                friend_request::Entity.into_iden(),
                "from_user_id",
                "to_user_id",
                "sent",
            ),
            (
                friend_request::Entity.into_iden(),
                "to_user_id",
                "from_user_id",
                "received",
            ),
        ];
        let mut selects = ties.into_iter().map(|(table, mine, theirs, kind)| {
            Query::select()
                .expr_as(Expr::col(Alias::new(theirs)), Alias::new("other"))
                .expr_as(Expr::val(kind), Alias::new("kind"))
                .from(table)
                .and_where(Expr::col(Alias::new(mine)).eq(viewer))
                .and_where(Expr::col(Alias::new(theirs)).is_in(others.iter().copied()))
                .to_owned()
        });
        let mut union = selects.next().expect("four selects");
        for select in selects {
            union.union(UnionType::All, select);
        }
        let backend = self.db.get_database_backend();
        let rows = Tie::find_by_statement(backend.build(&union))
            .all(&self.db)
            .await?;
        let mut found: HashMap<Uuid, Relationship> = others
            .iter()
            .map(|&other| {
                let relationship = if other == viewer {
                    Relationship::Myself
                } else {
                    Relationship::None
                };
                (other, relationship)
            })
            .collect();
        // A block outranks a friendship or request (a block ends those anyway).
        let rank = |r: Relationship| match r {
            Relationship::Blocked => 3,
            Relationship::Friends => 2,
            Relationship::RequestSent | Relationship::RequestReceived => 1,
            Relationship::Myself | Relationship::None => 0,
        };
        for tie in rows {
            let relationship = match tie.kind.as_str() {
                "friends" => Relationship::Friends,
                "blocked" => Relationship::Blocked,
                "sent" => Relationship::RequestSent,
                _ => Relationship::RequestReceived,
            };
            let entry = found.entry(tie.other).or_insert(Relationship::None);
            if rank(relationship) > rank(*entry) {
                *entry = relationship;
            }
        }
        Ok(found)
    }

    async fn request_to(&self, viewer: Uuid, request_id: Uuid) -> AppResult<friend_request::Model> {
        friend_request::Entity::find_by_id(request_id)
            .one(&self.db)
            .await?
            .filter(|r| r.to_user_id == viewer)
            .ok_or_else(request_not_found)
    }

    /// Declines or cancels under the pair lock, so it and an accept cannot both win.
    async fn remove_request(
        &self,
        request: friend_request::Model,
        status: RequestStatus,
    ) -> AppResult<FriendRequest> {
        let txn = self.db.begin().await?;
        lock_pair(&txn, request.from_user_id, request.to_user_id).await?;
        let deleted = friend_request::Entity::delete_by_id(request.id)
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(request_not_found());
        }
        txn.commit().await?;
        self.forget_pending(request.from_user_id, request.to_user_id)
            .await;
        Ok(FriendRequest::from_row(request, status))
    }

    /// Tells the sender their request was accepted, and both that they are
    /// friends now (their presence feeds follow each other from here).
    async fn announce_accepted(&self, request: &FriendRequest) {
        self.forget_friendship(request.from, request.to).await;
        self.forget_pending(request.from, request.to).await;
        self.pubsub.publish(
            &user_topic(request.from),
            Event::FriendRequestAccepted {
                request: request.clone(),
            },
        );
        for (user_id, friend_id) in [(request.from, request.to), (request.to, request.from)] {
            self.pubsub.publish(
                &user_topic(user_id),
                Event::FriendshipStarted { user_id, friend_id },
            );
        }
    }
}

/// `NOT_FOUND` unless `other` exists and has not blocked `viewer`. A block by
/// the viewer is `FORBIDDEN` where it stands in the way (asking to be friends),
/// and fine where it does not (blocking again, unfriending).
pub async fn check_reachable(
    db: &impl ConnectionTrait,
    viewer: Uuid,
    other: Uuid,
    own_block: OwnBlock,
) -> AppResult<()> {
    if !user_exists(db, other).await? {
        return Err(AppError::not_found("user not found"));
    }
    let blocks = block::Entity::find()
        .filter(blocks_between(viewer, other))
        .all(db)
        .await?;
    judge_blocks(
        blocks.iter().any(|b| b.blocker_id == other),
        blocks.iter().any(|b| b.blocker_id == viewer),
        own_block,
    )
}

/// The block rule itself, from the two directions of a pair's blocks: a user
/// who blocked the viewer is `NOT_FOUND` (as if they did not exist), and the
/// viewer's own block is `FORBIDDEN` where it stands in the way. Domains that
/// read the blocks in their own statement judge them here.
pub fn judge_blocks(
    they_blocked_viewer: bool,
    viewer_blocked_them: bool,
    own_block: OwnBlock,
) -> AppResult<()> {
    if they_blocked_viewer {
        return Err(AppError::not_found("user not found"));
    }
    if viewer_blocked_them && own_block == OwnBlock::Refuse {
        return Err(AppError::forbidden(
            "you blocked this user; unblock them first",
        ));
    }
    Ok(())
}

/// Whether either user blocked the other, read on `db` (a transaction, say).
pub async fn any_block_between(db: &impl ConnectionTrait, a: Uuid, b: Uuid) -> AppResult<bool> {
    Ok(block::Entity::find()
        .filter(blocks_between(a, b))
        .count(db)
        .await?
        > 0)
}

/// Whether an action may go ahead when the viewer has blocked the other user.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OwnBlock {
    Allow,
    Refuse,
}

/// A pair in canonical order (`low < high`), as pair-keyed tables store it.
pub fn ordered(a: Uuid, b: Uuid) -> (Uuid, Uuid) {
    if a < b { (a, b) } else { (b, a) }
}

/// Blocks between two users, whichever of them blocked.
fn blocks_between(a: Uuid, b: Uuid) -> Condition {
    Condition::any()
        .add(
            block::Column::BlockerId
                .eq(a)
                .and(block::Column::BlockedId.eq(b)),
        )
        .add(
            block::Column::BlockerId
                .eq(b)
                .and(block::Column::BlockedId.eq(a)),
        )
}

fn request_not_found() -> AppError {
    AppError::not_found("friend request not found")
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

/// Whether `a` and `b` are friends, read on `db` (a transaction, say).
pub async fn are_friends(db: &impl ConnectionTrait, a: Uuid, b: Uuid) -> AppResult<bool> {
    Ok(friendship::Entity::find_by_id((a, b))
        .one(db)
        .await?
        .is_some())
}

async fn pending_between(
    db: &impl ConnectionTrait,
    a: Uuid,
    b: Uuid,
) -> AppResult<Option<friend_request::Model>> {
    let (low, high) = ordered(a, b);
    Ok(friend_request::Entity::find()
        .filter(friend_request::Column::PairLow.eq(low))
        .filter(friend_request::Column::PairHigh.eq(high))
        .one(db)
        .await?)
}

/// Turns a pending request into a friendship: both rows, the request gone.
async fn accept_row(
    db: &impl ConnectionTrait,
    request: friend_request::Model,
) -> AppResult<FriendRequest> {
    // Whoever removes the request answers it: if it is already gone, a cancel or
    // decline won, and this accept must not make a friendship.
    let deleted = friend_request::Entity::delete_by_id(request.id)
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(request_not_found());
    }
    let now = Utc::now();
    let rows = [
        (request.from_user_id, request.to_user_id),
        (request.to_user_id, request.from_user_id),
    ]
    .map(|(user_id, friend_id)| friendship::ActiveModel {
        user_id: Set(user_id),
        friend_id: Set(friend_id),
        created_at: Set(now),
    });
    let inserted = friendship::Entity::insert_many(rows)
        .on_conflict_do_nothing()
        .exec_without_returning(db)
        .await?;
    if matches!(inserted, TryInsertResult::Inserted(rows) if rows > 0) {
        adjust_friend_counts(db, [request.from_user_id, request.to_user_id], 1).await?;
    }
    Ok(FriendRequest::from_row(request, RequestStatus::Accepted))
}

async fn delete_friendship(db: &impl ConnectionTrait, a: Uuid, b: Uuid) -> AppResult<()> {
    let deleted = friendship::Entity::delete_many()
        .filter(
            Condition::any()
                .add(
                    friendship::Column::UserId
                        .eq(a)
                        .and(friendship::Column::FriendId.eq(b)),
                )
                .add(
                    friendship::Column::UserId
                        .eq(b)
                        .and(friendship::Column::FriendId.eq(a)),
                ),
        )
        .exec(db)
        .await?;
    if deleted.rows_affected > 0 {
        adjust_friend_counts(db, [a, b], -1).await?;
    }
    Ok(())
}

/// Moves both users' friend counts by `delta`, in the caller's transaction.
async fn adjust_friend_counts(
    db: &impl ConnectionTrait,
    users: [Uuid; 2],
    delta: i64,
) -> AppResult<()> {
    user::Entity::update_many()
        .col_expr(
            user::Column::FriendCount,
            Expr::col(user::Column::FriendCount).add(delta),
        )
        .filter(user::Column::Id.is_in(users))
        .exec(db)
        .await?;
    Ok(())
}

/// Before an account is deleted (its friendship rows go with it by cascade):
/// its friends each lose one friend. Call in the deleting transaction. The user's
/// own row is locked first, so a pair change involving them either commits before
/// (and is counted here) or waits and then finds them gone. Returns the friends,
/// whose rows changed.
pub async fn forget_user(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<Vec<Uuid>> {
    lock_pair(db, user_id, user_id).await?;
    let friends: Vec<Uuid> = friendship::Entity::find()
        .select_only()
        .column(friendship::Column::FriendId)
        .filter(friendship::Column::UserId.eq(user_id))
        .into_tuple()
        .all(db)
        .await?;
    user::Entity::update_many()
        .col_expr(
            user::Column::FriendCount,
            Expr::col(user::Column::FriendCount).sub(1),
        )
        .filter(user::Column::Id.in_subquery(friend_ids_of(user_id)))
        .exec(db)
        .await?;
    Ok(friends)
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

/// `SELECT friend_id FROM friendships WHERE user_id = user`.
fn friend_ids_of(user: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(friendship::Column::FriendId)
        .from(friendship::Entity)
        .and_where(friendship::Column::UserId.eq(user))
        .to_owned()
}

/// The condition that the user in `column` has not blocked `viewer`: how any list
/// of users leaves out those who hid from the viewer.
pub fn not_hidden_from<T, C>(viewer: Uuid, column: (T, C)) -> Condition
where
    T: sea_orm::sea_query::IntoIden,
    C: sea_orm::sea_query::IntoIden,
{
    let blocked_viewer = Query::select()
        .expr(Expr::val(1))
        .from(block::Entity)
        .and_where(Expr::col((block::Entity, block::Column::BlockerId)).equals(column))
        .and_where(block::Column::BlockedId.eq(viewer))
        .to_owned();
    Condition::all().add(Expr::exists(blocked_viewer).not())
}
