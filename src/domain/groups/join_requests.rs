//! Join requests: asking to join lets the viewer into an open group, records a
//! request for an approval group and is refused by an invite-only one; its
//! group's managers approve or reject a request, its requester may cancel it.

use chrono::{DateTime, Utc};
use entity::group_join_request;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Groups, Invitation, InvitationStatus, JoinPolicy, Role,
    checks::{
        conflict_on_unique, join_request_not_found, lock_for, lock_group, require_still_manages,
    },
    invitations::invitation_row,
    outbox_events::Via,
    roles::{managers_of, role_of},
};
use crate::{
    domain::{
        events::{Event, user_topic},
        social,
    },
    error::{AppError, AppResult},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinRequestStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
}

/// A join request as the client sees it, also after it was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: Uuid,
    pub group_id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub status: JoinRequestStatus,
}

impl JoinRequest {
    pub(super) fn from_row(row: group_join_request::Model, status: JoinRequestStatus) -> Self {
        Self {
            id: row.id,
            group_id: row.group_id,
            user_id: row.user_id,
            created_at: row.created_at,
            status,
        }
    }
}

/// What asking to join did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The viewer is a member now (an open group, or they held an invitation),
    /// or already was.
    Joined,
    /// The request waits for an owner or admin.
    Requested(JoinRequest),
}

impl Groups {
    /// Asks to join: an open group lets the viewer in, an approval group records
    /// a request, an invite-only group refuses. Holding an invitation lets the
    /// viewer in whatever the policy. Asking again returns the same request.
    pub async fn request_to_join(&self, actor: Uuid, group_id: Uuid) -> AppResult<JoinOutcome> {
        let txn = self.db.begin().await?;
        social::lock_user(&txn, actor).await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        if locked.actor_role.is_some() {
            return Ok(JoinOutcome::Joined);
        }
        self.check_may_join(&txn, group_id, actor).await?;
        let invitation = match invitation_row(&txn, group_id, actor).await? {
            Some(invitation)
                if !social::any_block_between(&txn, invitation.inviter_id, actor).await? =>
            {
                Some(invitation)
            }
            _ => None,
        };
        let invited = invitation.is_some();
        let policy = JoinPolicy::from_stored(&locked.group.join_policy);
        if invited || policy == JoinPolicy::Open {
            let via = if invited {
                Via::Invitation
            } else {
                Via::Joined
            };
            let joined = self.admit(&txn, &locked.group, actor, actor, via).await?;
            // Asking while invited is a yes to the invitation: its consumers
            // hear so as from `acceptGroupInvitation`, not only that the
            // invitee joined.
            if let Some(invitation) = invitation {
                let accepted = Invitation::from_row(invitation, InvitationStatus::Accepted);
                self.outbox.append(&txn, accepted.event(actor)).await?;
            }
            txn.commit().await?;
            self.announce_joined(actor, joined);
            return Ok(JoinOutcome::Joined);
        }
        if policy == JoinPolicy::InviteOnly {
            return Err(AppError::forbidden("this group is invitation only"));
        }
        if let Some(existing) = join_request_row(&txn, group_id, actor).await? {
            return Ok(JoinOutcome::Requested(JoinRequest::from_row(
                existing,
                JoinRequestStatus::Pending,
            )));
        }
        let row = group_join_request::Model {
            id: Uuid::now_v7(),
            group_id,
            user_id: actor,
            created_at: Utc::now(),
        };
        group_join_request::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(conflict_on_unique(
                "groupId",
                "a join request is already pending",
            ))?;
        let managers = managers_of(&txn, group_id).await?;
        let request = JoinRequest::from_row(row, JoinRequestStatus::Pending);
        self.outbox.append(&txn, request.event(actor)).await?;
        txn.commit().await?;
        for manager in managers {
            self.pubsub.publish(
                &user_topic(manager),
                Event::GroupJoinRequestReceived {
                    request: request.clone(),
                },
            );
        }
        Ok(JoinOutcome::Requested(request))
    }

    /// An owner or admin lets the requester in.
    pub async fn approve_join_request(&self, actor: Uuid, id: Uuid) -> AppResult<JoinRequest> {
        let request = self.request_managed_by(actor, id).await?;
        let txn = self.db.begin().await?;
        social::lock_user(&txn, request.user_id).await?;
        let group = lock_group(&txn, request.group_id).await?;
        let request = group_join_request::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(join_request_not_found)?;
        require_still_manages(&txn, group.id, actor, join_request_not_found).await?;
        let joined = self
            .admit(&txn, &group, request.user_id, actor, Via::JoinRequest)
            .await?;
        let approved = JoinRequest::from_row(request, JoinRequestStatus::Approved);
        self.outbox.append(&txn, approved.event(actor)).await?;
        txn.commit().await?;
        self.announce_joined(approved.user_id, joined);
        self.announce_approved(approved.clone());
        Ok(approved)
    }

    /// An owner or admin says no.
    pub async fn reject_join_request(&self, actor: Uuid, id: Uuid) -> AppResult<JoinRequest> {
        let request = self.request_managed_by(actor, id).await?;
        self.remove_join_request(actor, request, JoinRequestStatus::Rejected, true)
            .await
    }

    /// The requester withdraws.
    pub async fn cancel_join_request(&self, actor: Uuid, id: Uuid) -> AppResult<JoinRequest> {
        let request = group_join_request::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|r| r.user_id == actor)
            .ok_or_else(join_request_not_found)?;
        self.remove_join_request(actor, request, JoinRequestStatus::Cancelled, false)
            .await
    }

    /// A group's pending join requests, oldest first (the queue an admin works
    /// through); callers check the viewer manages the group.
    pub async fn join_requests_of(
        &self,
        group_id: Uuid,
        after: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<JoinRequest>> {
        let mut select = group_join_request::Entity::find()
            .filter(group_join_request::Column::GroupId.eq(group_id));
        if let Some(after) = after {
            select = select.filter(group_join_request::Column::Id.gt(after));
        }
        Ok(select
            .order_by_asc(group_join_request::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| JoinRequest::from_row(row, JoinRequestStatus::Pending))
            .collect())
    }

    /// A pending join request the viewer made or may answer.
    pub async fn join_request_for(&self, viewer: Uuid, id: Uuid) -> AppResult<Option<JoinRequest>> {
        let Some(row) = group_join_request::Entity::find_by_id(id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let allowed = row.user_id == viewer
            || role_of(&self.db, row.group_id, viewer)
                .await?
                .is_some_and(Role::manages);
        Ok(allowed.then(|| JoinRequest::from_row(row, JoinRequestStatus::Pending)))
    }

    /// A join request of a group the viewer manages; `NOT_FOUND` otherwise, so
    /// nobody else learns it exists. Its own requester is told to cancel instead.
    async fn request_managed_by(
        &self,
        viewer: Uuid,
        id: Uuid,
    ) -> AppResult<group_join_request::Model> {
        let request = group_join_request::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(join_request_not_found)?;
        let manages = role_of(&self.db, request.group_id, viewer)
            .await?
            .is_some_and(Role::manages);
        if !manages {
            return Err(if request.user_id == viewer {
                AppError::forbidden("only the group's owner and admins answer join requests")
            } else {
                join_request_not_found()
            });
        }
        Ok(request)
    }

    /// Rejects or cancels under the group's lock; a rejecting `actor`
    /// (`as_manager`) must still manage the group under it.
    async fn remove_join_request(
        &self,
        actor: Uuid,
        request: group_join_request::Model,
        status: JoinRequestStatus,
        as_manager: bool,
    ) -> AppResult<JoinRequest> {
        let txn = self.db.begin().await?;
        lock_group(&txn, request.group_id).await?;
        if as_manager {
            require_still_manages(&txn, request.group_id, actor, join_request_not_found).await?;
        }
        let deleted = group_join_request::Entity::delete_by_id(request.id)
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(join_request_not_found());
        }
        let answered = JoinRequest::from_row(request, status);
        self.outbox.append(&txn, answered.event(actor)).await?;
        txn.commit().await?;
        Ok(answered)
    }

    pub(super) fn announce_approved(&self, request: JoinRequest) {
        self.pubsub.publish(
            &user_topic(request.user_id),
            Event::GroupJoinRequestApproved { request },
        );
    }
}

pub(super) async fn join_request_row(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<group_join_request::Model>> {
    Ok(group_join_request::Entity::find()
        .filter(group_join_request::Column::GroupId.eq(group_id))
        .filter(group_join_request::Column::UserId.eq(user_id))
        .one(db)
        .await?)
}
