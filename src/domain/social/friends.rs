//! Friendships: ending one, the friend pages and suggestions (walked on the
//! cached lists of `graph`), how the viewer stands to others as pages show it,
//! and the friend counts kept in users' rows.

use std::{collections::HashMap, sync::Arc};

use entity::{block, friend_request, friendship, user};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, TransactionTrait,
    sea_query::{Alias, Expr, ExprTrait, IntoIden, Query, UnionType},
};
use serde_json::json;
use uuid::Uuid;

use super::{OwnBlock, Social, after_cursor, check_reachable, graph, limit_of, lock_pair};
use crate::{
    domain::outbox::DomainEvent,
    error::{AppError, AppResult},
};

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

impl Social {
    /// Ends a friendship; ending one that does not exist changes nothing.
    pub async fn remove_friend(&self, viewer: Uuid, other: Uuid) -> AppResult<()> {
        if viewer == other {
            return Err(AppError::bad_input("userId", "you are not your own friend"));
        }
        let txn = self.db.begin().await?;
        lock_pair(&txn, viewer, other).await?;
        check_reachable(&txn, viewer, other, OwnBlock::Allow).await?;
        if delete_friendship(&txn, viewer, other).await? {
            self.outbox
                .append(&txn, friendship_removed(viewer, other, "removed"))
                .await?;
        }
        txn.commit().await?;
        self.forget_friendship(viewer, other).await;
        Ok(())
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
}

/// Whether `a` and `b` are friends, read on `db` (a transaction, say).
pub async fn are_friends(db: &impl ConnectionTrait, a: Uuid, b: Uuid) -> AppResult<bool> {
    Ok(friendship::Entity::find_by_id((a, b))
        .one(db)
        .await?
        .is_some())
}

/// Ends the friendship of `a` and `b`; whether there was one.
pub(super) async fn delete_friendship(
    db: &impl ConnectionTrait,
    a: Uuid,
    b: Uuid,
) -> AppResult<bool> {
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
    Ok(deleted.rows_affected > 0)
}

/// `friend.removed`: `actor` ended the friendship with `other`, by removing
/// them or (`reason` "blocked") by blocking them.
pub(super) fn friendship_removed(actor: Uuid, other: Uuid, reason: &str) -> DomainEvent {
    DomainEvent::new(
        "friend.removed",
        Some(actor),
        json!({ "userId": actor, "friendId": other, "reason": reason }),
    )
}

/// Moves both users' friend counts by `delta`, in the caller's transaction.
pub(super) async fn adjust_friend_counts(
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

/// `SELECT friend_id FROM friendships WHERE user_id = user`.
fn friend_ids_of(user: Uuid) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(friendship::Column::FriendId)
        .from(friendship::Entity)
        .and_where(friendship::Column::UserId.eq(user))
        .to_owned()
}
