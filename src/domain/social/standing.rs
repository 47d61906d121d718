//! How two users stand, as the rules that let them interact read it: blocks
//! either way, friendship, and their match, current or ended. The SQL that
//! reads it is written here once, as fragments other domains put inside their
//! own statements (a send reads the standing in the statement that writes its
//! message, on PostgreSQL a single one), so that only social names its tables.
//!
//! A pair's match belongs to how they stand: a block ends it for good
//! ([`end_match`]), in the block's transaction. (Discovery makes matches and
//! ends them on an unmatch; social sits below discovery, so a block ends the
//! match here rather than asking discovery.)

use std::sync::LazyLock;

use chrono::Utc;
use entity::user_match;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter, Value,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{OwnBlock, judge_blocks, ordered};
use crate::{
    config::DirectPolicy,
    domain::{
        events::{Event, Events, user_topic},
        outbox::DomainEvent,
    },
    error::{AppError, AppResult},
    infra::sql,
};

/// How a user stands to another (the sender of a message to its recipient,
/// say). Read with [`standing_columns`] or [`read_standing`].
#[derive(Clone, Copy, Debug, Default, FromQueryResult)]
pub struct Standing {
    /// The user blocked the other.
    pub blocked_them: bool,
    /// The other blocked the user.
    pub blocked_by_them: bool,
    pub friends: bool,
    /// They have a match (discovery) that has not ended.
    pub matched: bool,
    /// They had a match and it ended: no messages unless they are friends.
    pub unmatched: bool,
}

/// The SQL of [`Standing`]'s columns, for a SELECT list: how `user` stands to
/// `other`, with `low` and `high` the pair in [`ordered`] order. Each operand
/// is SQL: a placeholder (`$4`, `?`) or a column (`d.sender_id`).
pub fn standing_columns(user: &str, other: &str, low: &str, high: &str) -> String {
    format!(
        "EXISTS(SELECT 1 FROM blocks WHERE blocker_id = {user} AND blocked_id = {other}) AS blocked_them,
       EXISTS(SELECT 1 FROM blocks WHERE blocker_id = {other} AND blocked_id = {user}) AS blocked_by_them,
       EXISTS(SELECT 1 FROM friendships WHERE user_id = {user} AND friend_id = {other}) AS friends,
       EXISTS(SELECT 1 FROM matches WHERE user_low = {low} AND user_high = {high}
              AND unmatched_at IS NULL) AS matched,
       EXISTS(SELECT 1 FROM matches WHERE user_low = {low} AND user_high = {high}
              AND unmatched_at IS NOT NULL) AS unmatched"
    )
}

/// [`standing_columns`] alone, with `?` for every operand; its values are
/// [`standing_values`].
static READ_STANDING: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {}", standing_columns("?", "?", "?", "?")));

/// The values of [`standing_columns`] written with `?` for each operand, in order.
fn standing_values(user: Uuid, other: Uuid) -> Vec<Value> {
    let (low, high) = ordered(user, other);
    vec![
        user.into(),
        other.into(),
        other.into(),
        user.into(),
        user.into(),
        other.into(),
        low.into(),
        high.into(),
        low.into(),
        high.into(),
    ]
}

/// How `user` stands to `other`, read on `db` (a transaction, or the
/// connection when a conversation is opened).
pub async fn read_standing(
    db: &impl ConnectionTrait,
    user: Uuid,
    other: Uuid,
) -> Result<Standing, DbErr> {
    let statement = sql::statement(
        db.get_database_backend(),
        &READ_STANDING,
        standing_values(user, other),
    );
    Ok(Standing::find_by_statement(statement)
        .one(db)
        .await?
        .unwrap_or_default())
}

/// The policy of who may message whom, applied to how the sender stands to the
/// recipient: never across a block (whoever blocked is `NOT_FOUND` to the
/// other, as everywhere), never after their match ended (unless they are
/// friends), and friends or matches only unless the policy says everyone.
pub fn may_message(policy: DirectPolicy, standing: Standing) -> AppResult<()> {
    judge_blocks(
        standing.blocked_by_them,
        standing.blocked_them,
        OwnBlock::Refuse,
    )?;
    if standing.unmatched && !standing.friends {
        return Err(AppError::forbidden("your match with this user has ended"));
    }
    if policy == DirectPolicy::Friends && !standing.friends && !standing.matched {
        return Err(AppError::forbidden(
            "you can message your friends and matches only",
        ));
    }
    Ok(())
}

/// The SQL of a condition that a block stands between `a` and `b`, whichever
/// of them blocked; operands as in [`standing_columns`], `a` first in its
/// values. `NOT (…)` of it is how a list leaves out those blocked either way.
pub fn blocked_either_way_sql(a: &str, b: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM blocks WHERE blocker_id = {a} AND blocked_id = {b}) \
         OR EXISTS (SELECT 1 FROM blocks WHERE blocker_id = {b} AND blocked_id = {a}))"
    )
}

/// The SQL of a query of everyone `user` blocked or was blocked by, one
/// column `other` (a user blocked both ways comes twice); `user` as in
/// [`standing_columns`], twice in its values.
pub fn blocked_either_way_ids_sql(user: &str) -> String {
    format!(
        "SELECT blocked_id AS other FROM blocks WHERE blocker_id = {user} \
         UNION ALL SELECT blocker_id FROM blocks WHERE blocked_id = {user}"
    )
}

/// A pair's match that ended (by a block, an unmatch), to announce once that
/// commits.
pub struct EndedMatch {
    pub id: Uuid,
    pub user_low: Uuid,
    pub user_high: Uuid,
}

/// Ends the pair's match, if they have one, and returns it: in the
/// transaction that changes the pair (a block here, discovery's unmatch),
/// under the pair's lock.
pub async fn end_match(
    db: &impl ConnectionTrait,
    a: Uuid,
    b: Uuid,
) -> AppResult<Option<EndedMatch>> {
    let (low, high) = ordered(a, b);
    let Some(current) = user_match::Entity::find()
        .filter(user_match::Column::UserLow.eq(low))
        .filter(user_match::Column::UserHigh.eq(high))
        .filter(user_match::Column::UnmatchedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let ended = user_match::Entity::update_many()
        .col_expr(user_match::Column::UnmatchedAt, Expr::value(Utc::now()))
        .filter(user_match::Column::Id.eq(current.id))
        .filter(user_match::Column::UnmatchedAt.is_null())
        .exec(db)
        .await?;
    Ok((ended.rows_affected > 0).then_some(EndedMatch {
        id: current.id,
        user_low: current.user_low,
        user_high: current.user_high,
    }))
}

impl EndedMatch {
    /// `match.ended`: `actor` ended it, by `reason` ("unmatched", "blocked",
    /// "deleted").
    pub fn event(&self, actor: Uuid, reason: &str) -> DomainEvent {
        DomainEvent::new(
            "match.ended",
            Some(actor),
            serde_json::json!({
                "matchId": self.id,
                "userIds": [self.user_low, self.user_high],
                "reason": reason,
            }),
        )
    }

    /// Tells both users their match ended, so their apps can drop it.
    pub fn announce(&self, pubsub: &Events) {
        for user in [self.user_low, self.user_high] {
            pubsub.publish(
                &user_topic(user),
                Event::MatchEnded {
                    match_id: self.id,
                    user_id: user,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standing_read_alone_has_a_value_for_every_placeholder() {
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        assert_eq!(
            READ_STANDING.matches('?').count(),
            standing_values(a, b).len()
        );
    }

    #[test]
    fn fragments_put_their_operands_where_asked() {
        let columns = standing_columns("$4", "$8", "$9", "$10");
        assert!(columns.contains("blocker_id = $4 AND blocked_id = $8) AS blocked_them"));
        assert!(columns.contains("blocker_id = $8 AND blocked_id = $4) AS blocked_by_them"));
        assert!(columns.contains("user_id = $4 AND friend_id = $8) AS friends"));
        assert!(blocked_either_way_sql("?", "u.id").starts_with("(EXISTS"));
    }
}
