//! Swipes: the latest of LIKE, SUPER_LIKE or PASS per (swiper, target), and
//! the match two likes make.

use chrono::{DateTime, Duration, Utc};
use entity::{swipe, user, user_match};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    TransactionTrait,
    sea_query::{ExprTrait, OnConflict},
};
use serde_json::json;
use uuid::Uuid;

use super::{Discovery, Match, Profile, matches::match_of_pair};
use crate::{
    domain::events::{Event, user_topic},
    domain::{outbox::DomainEvent, social},
    error::{AppError, AppResult, is_unique_violation},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwipeKind {
    Like,
    SuperLike,
    Pass,
}

impl SwipeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Like => "LIKE",
            Self::SuperLike => "SUPER_LIKE",
            Self::Pass => "PASS",
        }
    }

    pub fn from_stored(value: &str) -> Self {
        match value {
            "LIKE" => Self::Like,
            "SUPER_LIKE" => Self::SuperLike,
            _ => Self::Pass,
        }
    }

    pub fn likes(self) -> bool {
        self != Self::Pass
    }
}

/// What a swipe came to.
pub struct SwipeOutcome {
    /// The pair's match, when there is one (new or from before).
    pub matched: Option<Match>,
    /// Super likes left in the rolling day, after a super like.
    pub super_likes_left: Option<u32>,
}

impl Discovery {
    /// Likes, super-likes or passes `target`. A like of someone who liked the
    /// viewer makes the match (or answers the one they have).
    pub async fn swipe(
        &self,
        viewer: Uuid,
        target: Uuid,
        kind: SwipeKind,
    ) -> AppResult<SwipeOutcome> {
        if viewer == target {
            return Err(AppError::bad_input("userId", "you cannot swipe yourself"));
        }
        let now = Utc::now();
        let today = now.date_naive();
        let txn = self.db.begin().await?;
        social::lock_pair(&txn, viewer, target).await?;
        social::check_reachable(&txn, viewer, target, social::OwnBlock::Refuse).await?;
        let pair = user::Entity::find()
            .filter(user::Column::Id.is_in([viewer, target]))
            .all(&txn)
            .await?;
        let viewer_row = pair
            .iter()
            .find(|u| u.id == viewer)
            .ok_or_else(|| AppError::not_found("account not found"))?;
        let target_row = pair
            .iter()
            .find(|u| u.id == target)
            .ok_or_else(|| AppError::not_found("user not found"))?;
        Profile::of_viewer(viewer_row, today)?;

        let (low, high) = social::ordered(viewer, target);
        let earlier_match = match_of_pair(viewer, target).one(&txn).await?;
        if let Some(earlier) = earlier_match {
            // Matched (or unmatched) pairs are settled: liking again changes
            // nothing, passing is what unmatching is for.
            if kind == SwipeKind::Pass && earlier.unmatched_at.is_none() {
                return Err(AppError::conflict(
                    "userId",
                    "you matched with this user; unmatch instead",
                ));
            }
            return Ok(SwipeOutcome {
                matched: earlier.unmatched_at.is_none().then(|| Match::from(earlier)),
                super_likes_left: None,
            });
        }

        let swipes = swipe::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        swipe::Column::SwiperId
                            .eq(viewer)
                            .and(swipe::Column::TargetId.eq(target)),
                    )
                    .add(
                        swipe::Column::SwiperId
                            .eq(target)
                            .and(swipe::Column::TargetId.eq(viewer)),
                    ),
            )
            .all(&txn)
            .await?;
        let mine = swipes
            .iter()
            .find(|s| s.swiper_id == viewer)
            .map(|s| SwipeKind::from_stored(&s.kind));
        let liked_viewer = swipes
            .iter()
            .any(|s| s.swiper_id == target && SwipeKind::from_stored(&s.kind).likes());
        // Someone who liked the viewer may always be liked back; anyone else
        // must be someone discovery would show.
        if kind.likes() && !liked_viewer {
            let shown = target_row.discoverable && Profile::of(target_row, today).is_some();
            if !shown {
                return Err(AppError::forbidden("this user is not open to new matches"));
            }
        }

        if mine == Some(SwipeKind::SuperLike) && kind == SwipeKind::Pass {
            return Err(AppError::conflict(
                "userId",
                "you super-liked this user; a super like cannot be taken back",
            ));
        }
        // What is stored: a super like never weakens to a plain like.
        let stored = match (mine, kind) {
            (Some(SwipeKind::SuperLike), SwipeKind::Like) => SwipeKind::SuperLike,
            (_, kind) => kind,
        };
        let mut super_likes_left = None;
        if stored == SwipeKind::SuperLike && mine != Some(SwipeKind::SuperLike) {
            super_likes_left = Some(self.spend_super_like(&txn, viewer, now).await?);
        }
        // A new kind, or a pass again (which restarts its cooldown).
        if mine != Some(stored) || stored == SwipeKind::Pass {
            swipe::Entity::insert(swipe::ActiveModel {
                swiper_id: Set(viewer),
                target_id: Set(target),
                kind: Set(stored.as_str().to_owned()),
                created_at: Set(now),
            })
            .on_conflict(
                OnConflict::columns([swipe::Column::SwiperId, swipe::Column::TargetId])
                    .update_columns([swipe::Column::Kind, swipe::Column::CreatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
            // A pass stays between the viewer and kith.
            if stored.likes() {
                self.outbox
                    .append(
                        &txn,
                        DomainEvent::new(
                            "swipe.liked",
                            Some(viewer),
                            json!({
                                "swiperId": viewer,
                                "targetId": target,
                                "superLike": stored == SwipeKind::SuperLike,
                            }),
                        ),
                    )
                    .await?;
            }
        }
        if !(stored.likes() && liked_viewer) {
            txn.commit().await?;
            return Ok(SwipeOutcome {
                matched: None,
                super_likes_left,
            });
        }

        let row = user_match::Model {
            id: Uuid::now_v7(),
            user_low: low,
            user_high: high,
            created_at: now,
            unmatched_at: None,
        };
        let inserted = user_match::Entity::insert(user_match::ActiveModel {
            id: Set(row.id),
            user_low: Set(row.user_low),
            user_high: Set(row.user_high),
            created_at: Set(row.created_at),
            unmatched_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await;
        match inserted {
            Ok(_) => {
                self.outbox
                    .append(
                        &txn,
                        DomainEvent::new(
                            "match.created",
                            Some(viewer),
                            json!({
                                "matchId": row.id,
                                "userIds": [row.user_low, row.user_high],
                                "createdAt": row.created_at,
                            }),
                        ),
                    )
                    .await?;
                txn.commit().await?;
            }
            // The pair's lock makes this unreachable; should it happen, the
            // match that won stands.
            Err(err) if is_unique_violation(&err) => {
                drop(txn);
                let found = match_of_pair(low, high)
                    .filter(user_match::Column::UnmatchedAt.is_null())
                    .one(&self.db)
                    .await?;
                return Ok(SwipeOutcome {
                    matched: found.map(Match::from),
                    super_likes_left,
                });
            }
            Err(err) => return Err(err.into()),
        }
        let matched = Match::from(row);
        // The conversation opens after commit: the chat policy reads the match.
        // Should this fail, `Match.conversation` opens it on first use.
        if let Err(err) = self.chat.direct_conversation(viewer, target).await {
            tracing::warn!(error = ?err, "opening a match's conversation");
        }
        for user in [viewer, target] {
            self.pubsub.publish(
                &user_topic(user),
                Event::MatchCreated {
                    matched: matched.clone(),
                },
            );
        }
        Ok(SwipeOutcome {
            matched: Some(matched),
            super_likes_left,
        })
    }

    /// Counts a super like against the rolling day's quota, or refuses it with
    /// `RATE_LIMITED` and when the oldest one in the window frees a slot. Runs
    /// under the swiper's row lock, so concurrent super likes count in turn.
    async fn spend_super_like(
        &self,
        db: &impl ConnectionTrait,
        viewer: Uuid,
        now: DateTime<Utc>,
    ) -> AppResult<u32> {
        let window_start = now - Duration::days(1);
        let recent: Vec<DateTime<Utc>> = swipe::Entity::find()
            .select_only()
            .column(swipe::Column::CreatedAt)
            .filter(swipe::Column::SwiperId.eq(viewer))
            .filter(swipe::Column::Kind.eq(SwipeKind::SuperLike.as_str()))
            .filter(swipe::Column::CreatedAt.gt(window_start))
            .into_tuple()
            .all(db)
            .await?;
        let used = recent.len() as u32;
        if used >= self.super_likes_per_day {
            let oldest = recent.iter().min().copied().unwrap_or(now);
            let wait = Ord::max((oldest + Duration::days(1) - now).num_seconds(), 1) as u64;
            return Err(AppError::RateLimited {
                retry_after_secs: wait,
                reason: Some(format!(
                    "you have used your {} super likes for today",
                    self.super_likes_per_day
                )),
            });
        }
        Ok(self.super_likes_per_day - used - 1)
    }
}
