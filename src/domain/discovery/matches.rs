//! Matches: the pairs two likes made, listed, read and ended (by unmatching,
//! a block, or an account's deletion).

use chrono::{DateTime, Utc};
use entity::user_match;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Select, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Discovery;
use crate::{
    domain::events::Events,
    domain::{outbox::DomainEvent, social},
    error::{AppError, AppResult},
};

/// A match as its users and subscribers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Match {
    pub id: Uuid,
    pub user_low: Uuid,
    pub user_high: Uuid,
    pub created_at: DateTime<Utc>,
}

impl Match {
    /// The other user of the pair, as `viewer` sees it.
    pub fn other(&self, viewer: Uuid) -> Uuid {
        if self.user_low == viewer {
            self.user_high
        } else {
            self.user_low
        }
    }
}

impl From<user_match::Model> for Match {
    fn from(row: user_match::Model) -> Self {
        Self {
            id: row.id,
            user_low: row.user_low,
            user_high: row.user_high,
            created_at: row.created_at,
        }
    }
}

impl Discovery {
    /// The viewer's matches, newest first, after the match `before` (by id).
    pub async fn matches(
        &self,
        viewer: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Match>> {
        let mut query = current_matches_of(viewer);
        if let Some(before) = before {
            query = query.filter(user_match::Column::Id.lt(before));
        }
        Ok(query
            .order_by_desc(user_match::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Match::from)
            .collect())
    }

    /// One of the viewer's current matches.
    pub async fn match_for(&self, viewer: Uuid, id: Uuid) -> AppResult<Option<Match>> {
        Ok(user_match::Entity::find_by_id(id)
            .filter(user_match::Column::UnmatchedAt.is_null())
            .one(&self.db)
            .await?
            .filter(|m| m.user_low == viewer || m.user_high == viewer)
            .map(Match::from))
    }

    /// Ends one of the viewer's matches for good; both users hear of it.
    pub async fn unmatch(&self, viewer: Uuid, id: Uuid) -> AppResult<Match> {
        let found = self
            .match_for(viewer, id)
            .await?
            .ok_or_else(|| AppError::not_found("match not found"))?;
        let txn = self.db.begin().await?;
        // Under the pair's lock, as a send to their conversation reads it.
        social::lock_pair(&txn, found.user_low, found.user_high).await?;
        let ended = social::end_match(&txn, found.user_low, found.user_high).await?;
        if let Some(ended) = &ended {
            self.outbox
                .append(&txn, ended.event(viewer, "unmatched"))
                .await?;
        }
        txn.commit().await?;
        let Some(ended) = ended else {
            return Err(AppError::not_found("match not found"));
        };
        ended.announce(&self.pubsub);
        Ok(found)
    }
}

/// Before an account is deleted (its swipes and matches go with it by
/// cascade): the matches it had, to announce as ended once that commits. Call
/// in the deleting transaction, after the user's row is locked.
pub async fn forget_user(db: &impl ConnectionTrait, user_id: Uuid) -> AppResult<Vec<Match>> {
    Ok(current_matches_of(user_id)
        .all(db)
        .await?
        .into_iter()
        .map(Match::from)
        .collect())
}

/// The pair's match row, current or ended (a pair has one at most).
pub(super) fn match_of_pair(a: Uuid, b: Uuid) -> Select<user_match::Entity> {
    let (low, high) = social::ordered(a, b);
    user_match::Entity::find()
        .filter(user_match::Column::UserLow.eq(low))
        .filter(user_match::Column::UserHigh.eq(high))
}

/// A user's matches that have not ended, on either side of the pair.
fn current_matches_of(user: Uuid) -> Select<user_match::Entity> {
    user_match::Entity::find()
        .filter(
            Condition::any()
                .add(user_match::Column::UserLow.eq(user))
                .add(user_match::Column::UserHigh.eq(user)),
        )
        .filter(user_match::Column::UnmatchedAt.is_null())
}

/// `match.ended` for a match an account's deletion (by `user_id`) ended.
pub fn match_ended_by_deletion(ended: &Match, user_id: Uuid) -> DomainEvent {
    social::EndedMatch {
        id: ended.id,
        user_low: ended.user_low,
        user_high: ended.user_high,
    }
    .event(user_id, "deleted")
}

/// Tells both users their match ended, so their apps can drop it.
pub fn announce_match_ended(pubsub: &Events, ended: &Match) {
    social::EndedMatch {
        id: ended.id,
        user_low: ended.user_low,
        user_high: ended.user_high,
    }
    .announce(pubsub);
}
