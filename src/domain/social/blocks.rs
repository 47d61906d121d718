//! Blocks: blocking and unblocking, and the block rule every domain applies
//! before two users interact (a user who blocked the viewer is as if they did
//! not exist).

use chrono::Utc;
use entity::{block, friend_request};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, TryInsertResult,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    Social,
    friends::{delete_friendship, friendship_removed},
    lock_pair, ordered, standing, user_exists,
};
use crate::{
    domain::{
        events::{Event, user_topic},
        outbox::DomainEvent,
    },
    error::{AppError, AppResult},
};

impl Social {
    /// Blocks `other`: ends the friendship and pending requests both ways, in the
    /// same transaction. Blocking again changes nothing.
    pub async fn block(&self, viewer: Uuid, other: Uuid) -> AppResult<()> {
        if viewer == other {
            return Err(AppError::bad_input("userId", "you cannot block yourself"));
        }
        let txn = self.db.begin().await?;
        lock_pair(&txn, viewer, other).await?;
        check_reachable(&txn, viewer, other, OwnBlock::Allow).await?;
        let unfriended = delete_friendship(&txn, viewer, other).await?;
        let (low, high) = ordered(viewer, other);
        friend_request::Entity::delete_many()
            .filter(friend_request::Column::PairLow.eq(low))
            .filter(friend_request::Column::PairHigh.eq(high))
            .exec(&txn)
            .await?;
        // A block ends a match for good, as unmatching does.
        let ended_match = standing::end_match(&txn, viewer, other).await?;
        let inserted = block::Entity::insert(block::ActiveModel {
            blocker_id: Set(viewer),
            blocked_id: Set(other),
            created_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
        // What the block ended, then the block, as an account's deletion
        // tells its ended matches before itself.
        let unfriended = unfriended.then(|| friendship_removed(viewer, other, "blocked"));
        let unmatched = ended_match
            .as_ref()
            .map(|ended| ended.event(viewer, "blocked"));
        let blocked = matches!(inserted, TryInsertResult::Inserted(rows) if rows > 0)
            .then(|| block_event("user.blocked", viewer, other));
        self.outbox
            .append_all(&txn, [unfriended, unmatched, blocked].into_iter().flatten())
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
            ended.announce(&self.pubsub);
        }
        Ok(())
    }

    /// Lifts the viewer's block; lifting none changes nothing. A user who blocked
    /// the viewer is `NOT_FOUND`, as everywhere.
    pub async fn unblock(&self, viewer: Uuid, other: Uuid) -> AppResult<()> {
        if viewer == other {
            return Err(AppError::bad_input("userId", "you cannot unblock yourself"));
        }
        check_reachable(&self.db, viewer, other, OwnBlock::Allow).await?;
        let txn = self.db.begin().await?;
        let lifted = block::Entity::delete_many()
            .filter(block::Column::BlockerId.eq(viewer))
            .filter(block::Column::BlockedId.eq(other))
            .exec(&txn)
            .await?;
        if lifted.rows_affected > 0 {
            self.outbox
                .append(&txn, block_event("user.unblocked", viewer, other))
                .await?;
        }
        txn.commit().await?;
        self.graph.forget_blockers(&[other]).await;
        self.graph.forget_pending_or_blocked(&[viewer]).await;
        Ok(())
    }

    /// Whether either user blocked the other: the rule every domain asks before
    /// letting two users interact (messages, matches, invitations).
    pub async fn blocked_between(&self, a: Uuid, b: Uuid) -> AppResult<bool> {
        any_block_between(&self.db, a, b).await
    }

    /// Which of `others` blocked `viewer` or were blocked by them: one query
    /// for a list of users.
    pub async fn blocks_among(
        &self,
        viewer: Uuid,
        others: &[Uuid],
    ) -> AppResult<std::collections::HashSet<Uuid>> {
        let rows: Vec<(Uuid, Uuid)> = block::Entity::find()
            .select_only()
            .column(block::Column::BlockerId)
            .column(block::Column::BlockedId)
            .filter(
                Condition::any()
                    .add(
                        block::Column::BlockerId
                            .eq(viewer)
                            .and(block::Column::BlockedId.is_in(others.iter().copied())),
                    )
                    .add(
                        block::Column::BlockedId
                            .eq(viewer)
                            .and(block::Column::BlockerId.is_in(others.iter().copied())),
                    ),
            )
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(blocker, blocked)| if blocker == viewer { blocked } else { blocker })
            .collect())
    }

    /// Whether `target` blocked `viewer`, which hides `target` from `viewer` entirely.
    pub async fn hides_from(&self, target: Uuid, viewer: Uuid) -> AppResult<bool> {
        Ok(block::Entity::find_by_id((target, viewer))
            .one(&self.db)
            .await?
            .is_some())
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

/// `user.blocked` or `user.unblocked`: `blocker` blocked `blocked`, or
/// lifted it.
fn block_event(kind: &'static str, blocker: Uuid, blocked: Uuid) -> DomainEvent {
    DomainEvent::new(
        kind,
        Some(blocker),
        serde_json::json!({ "blockerId": blocker, "blockedId": blocked }),
    )
}
