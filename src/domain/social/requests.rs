//! Friend requests: asking, accepting (which makes a friendship), declining and
//! withdrawing, each under the pair's lock.

use chrono::{DateTime, Utc};
use entity::{friend_request, friendship};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait, TryInsertResult,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    OwnBlock, Social, are_friends, check_reachable, friends::adjust_friend_counts, lock_pair,
    ordered,
};
use crate::{
    domain::{
        events::{Event, user_topic},
        outbox::DomainEvent,
    },
    error::{AppError, AppResult, is_unique_violation},
};

const MAX_MESSAGE_CHARS: usize = 500;

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

impl Social {
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
            // Line breaks are a note's own; other control characters are not
            // text (and PostgreSQL cannot store a NUL).
            Some(m) if m.chars().any(|c| c.is_control() && c != '\n') => {
                return Err(AppError::bad_input(
                    "message",
                    "message contains control characters",
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
            self.outbox.append(&txn, accepted.event(from)).await?;
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
        let request = FriendRequest::from_row(inserted, RequestStatus::Pending);
        self.outbox.append(&txn, request.event(from)).await?;
        txn.commit().await?;
        self.forget_pending(from, to).await;
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
        self.outbox.append(&txn, accepted.event(viewer)).await?;
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
        self.remove_request(viewer, request, RequestStatus::Declined)
            .await
    }

    /// Withdraws a request `viewer` sent.
    pub async fn cancel_request(&self, viewer: Uuid, request_id: Uuid) -> AppResult<FriendRequest> {
        let request = friend_request::Entity::find_by_id(request_id)
            .one(&self.db)
            .await?
            .filter(|r| r.from_user_id == viewer)
            .ok_or_else(request_not_found)?;
        self.remove_request(viewer, request, RequestStatus::Cancelled)
            .await
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
        viewer: Uuid,
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
        let request = FriendRequest::from_row(request, status);
        self.outbox.append(&txn, request.event(viewer)).await?;
        txn.commit().await?;
        self.forget_pending(request.from, request.to).await;
        Ok(request)
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

impl FriendRequest {
    /// What became of the request, for services outside kith:
    /// `friend.request_sent`, `_accepted`, `_declined` or `_cancelled`,
    /// by `actor`.
    fn event(&self, actor: Uuid) -> DomainEvent {
        let kind = match self.status {
            RequestStatus::Pending => "friend.request_sent",
            RequestStatus::Accepted => "friend.request_accepted",
            RequestStatus::Declined => "friend.request_declined",
            RequestStatus::Cancelled => "friend.request_cancelled",
        };
        let mut data = serde_json::json!({
            "requestId": self.id,
            "fromUserId": self.from,
            "toUserId": self.to,
        });
        // The note travels with the asking only.
        if self.status == RequestStatus::Pending {
            data["message"] = serde_json::json!(self.message);
        }
        DomainEvent::new(kind, Some(actor), data)
    }
}

fn request_not_found() -> AppError {
    AppError::not_found("friend request not found")
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
