//! Invitations: an owner or admin invites a user, who accepts or declines; a
//! manager may revoke it. An invitation also lets its invitee see a private
//! group and join whatever its policy.

use chrono::{DateTime, Utc};
use entity::group_invitation;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Groups, JoinRequest, JoinRequestStatus, Role,
    checks::{
        conflict_on_unique, invitation_not_found, lock_for, lock_group, require_still_manages,
    },
    join_requests::join_request_row,
    outbox_events::Via,
    roles::role_of,
};
use crate::{
    domain::{
        events::{Event, user_topic},
        social::{self, OwnBlock},
    },
    error::{AppError, AppResult},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

/// An invitation as the client sees it, also after it was answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: Uuid,
    pub group_id: Uuid,
    pub inviter: Uuid,
    pub invitee: Uuid,
    pub created_at: DateTime<Utc>,
    pub status: InvitationStatus,
}

impl Invitation {
    pub(super) fn from_row(row: group_invitation::Model, status: InvitationStatus) -> Self {
        Self {
            id: row.id,
            group_id: row.group_id,
            inviter: row.inviter_id,
            invitee: row.invitee_id,
            created_at: row.created_at,
            status,
        }
    }
}

impl Groups {
    /// Invites a user: owners and admins only. Inviting again returns the same
    /// invitation; inviting someone who asked to join lets them in.
    pub async fn invite(
        &self,
        actor: Uuid,
        group_id: Uuid,
        user_id: Uuid,
    ) -> AppResult<Invitation> {
        if actor == user_id {
            return Err(AppError::bad_input("userId", "you cannot invite yourself"));
        }
        let txn = self.db.begin().await?;
        // The invitee may be let in at once (below): their lock comes first.
        social::lock_user(&txn, user_id).await?;
        let locked = lock_for(&txn, group_id, actor).await?;
        locked.require_manager("invite")?;
        social::check_reachable(&txn, actor, user_id, OwnBlock::Refuse).await?;
        if role_of(&txn, group_id, user_id).await?.is_some() {
            return Err(AppError::conflict("userId", "they are already a member"));
        }
        if let Some(existing) = group_invitation::Entity::find()
            .filter(group_invitation::Column::GroupId.eq(group_id))
            .filter(group_invitation::Column::InviteeId.eq(user_id))
            .one(&txn)
            .await?
        {
            return Ok(Invitation::from_row(existing, InvitationStatus::Pending));
        }
        let row = group_invitation::Model {
            id: Uuid::now_v7(),
            group_id,
            inviter_id: actor,
            invitee_id: user_id,
            created_at: Utc::now(),
        };
        if let Some(request) = join_request_row(&txn, group_id, user_id).await? {
            // They asked first: the invitation is the yes.
            let joined = self
                .admit(&txn, &locked.group, user_id, actor, Via::JoinRequest)
                .await?;
            let approved = JoinRequest::from_row(request, JoinRequestStatus::Approved);
            self.outbox.append(&txn, approved.event(actor)).await?;
            txn.commit().await?;
            self.announce_joined(user_id, joined);
            self.announce_approved(approved);
            return Ok(Invitation::from_row(row, InvitationStatus::Accepted));
        }
        group_invitation::Entity::insert(row.clone().into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(conflict_on_unique(
                "userId",
                "an invitation is already pending",
            ))?;
        let invitation = Invitation::from_row(row, InvitationStatus::Pending);
        self.outbox.append(&txn, invitation.event(actor)).await?;
        txn.commit().await?;
        self.pubsub.publish(
            &user_topic(user_id),
            Event::GroupInvitationReceived {
                invitation: invitation.clone(),
            },
        );
        Ok(invitation)
    }

    /// The invitee joins.
    pub async fn accept_invitation(&self, actor: Uuid, id: Uuid) -> AppResult<Invitation> {
        let invitation = self.invitation_to(actor, id).await?;
        let txn = self.db.begin().await?;
        social::lock_user(&txn, actor).await?;
        let group = lock_group(&txn, invitation.group_id).await?;
        // Re-read under the lock: a revoke may have won the race.
        let invitation = group_invitation::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or_else(invitation_not_found)?;
        if social::any_block_between(&txn, invitation.inviter_id, actor).await? {
            return Err(AppError::forbidden(
                "this invitation no longer holds: you and its sender blocked one another",
            ));
        }
        let joined = self
            .admit(&txn, &group, actor, actor, Via::Invitation)
            .await?;
        let accepted = Invitation::from_row(invitation, InvitationStatus::Accepted);
        self.outbox.append(&txn, accepted.event(actor)).await?;
        txn.commit().await?;
        self.announce_joined(actor, joined);
        Ok(accepted)
    }

    /// The invitee says no.
    pub async fn decline_invitation(&self, actor: Uuid, id: Uuid) -> AppResult<Invitation> {
        let invitation = self.invitation_to(actor, id).await?;
        self.remove_invitation(actor, invitation, InvitationStatus::Declined, false)
            .await
    }

    /// An owner or admin withdraws an invitation.
    pub async fn revoke_invitation(&self, actor: Uuid, id: Uuid) -> AppResult<Invitation> {
        let invitation = group_invitation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(invitation_not_found)?;
        let manages = role_of(&self.db, invitation.group_id, actor)
            .await?
            .is_some_and(Role::manages);
        if !manages {
            // The invitee sees their invitation, but may only decline it.
            return Err(if invitation.invitee_id == actor {
                AppError::forbidden("decline the invitation instead")
            } else {
                invitation_not_found()
            });
        }
        self.remove_invitation(actor, invitation, InvitationStatus::Revoked, true)
            .await
    }

    /// The viewer's pending invitations, newest first.
    pub async fn invitations_to(
        &self,
        viewer: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Invitation>> {
        let mut select = group_invitation::Entity::find()
            .filter(group_invitation::Column::InviteeId.eq(viewer))
            .filter(social::not_hidden_from(
                viewer,
                (
                    group_invitation::Entity,
                    group_invitation::Column::InviterId,
                ),
            ));
        if let Some(before) = before {
            select = select.filter(group_invitation::Column::Id.lt(before));
        }
        Ok(select
            .order_by_desc(group_invitation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Invitation::from_row(row, InvitationStatus::Pending))
            .collect())
    }

    /// A group's pending invitations, newest first; callers check the viewer
    /// manages the group.
    pub async fn invitations_of(
        &self,
        group_id: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> AppResult<Vec<Invitation>> {
        let mut select =
            group_invitation::Entity::find().filter(group_invitation::Column::GroupId.eq(group_id));
        if let Some(before) = before {
            select = select.filter(group_invitation::Column::Id.lt(before));
        }
        Ok(select
            .order_by_desc(group_invitation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| Invitation::from_row(row, InvitationStatus::Pending))
            .collect())
    }

    /// A pending invitation the viewer received or may manage.
    pub async fn invitation_for(&self, viewer: Uuid, id: Uuid) -> AppResult<Option<Invitation>> {
        let Some(row) = group_invitation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let allowed = row.invitee_id == viewer
            || role_of(&self.db, row.group_id, viewer)
                .await?
                .is_some_and(Role::manages);
        Ok(allowed.then(|| Invitation::from_row(row, InvitationStatus::Pending)))
    }

    async fn invitation_to(&self, viewer: Uuid, id: Uuid) -> AppResult<group_invitation::Model> {
        group_invitation::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .filter(|i| i.invitee_id == viewer)
            .ok_or_else(invitation_not_found)
    }

    /// Declines or revokes under the group's lock, so it and an accept cannot
    /// both win. A revoking `actor` (`as_manager`) must still manage the
    /// group under the lock.
    async fn remove_invitation(
        &self,
        actor: Uuid,
        invitation: group_invitation::Model,
        status: InvitationStatus,
        as_manager: bool,
    ) -> AppResult<Invitation> {
        let txn = self.db.begin().await?;
        lock_group(&txn, invitation.group_id).await?;
        if as_manager {
            require_still_manages(&txn, invitation.group_id, actor, invitation_not_found).await?;
        }
        let deleted = group_invitation::Entity::delete_by_id(invitation.id)
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(invitation_not_found());
        }
        let answered = Invitation::from_row(invitation, status);
        self.outbox.append(&txn, answered.event(actor)).await?;
        txn.commit().await?;
        Ok(answered)
    }
}

pub(super) async fn invitation_row(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<group_invitation::Model>> {
    Ok(group_invitation::Entity::find()
        .filter(group_invitation::Column::GroupId.eq(group_id))
        .filter(group_invitation::Column::InviteeId.eq(user_id))
        .one(db)
        .await?)
}
