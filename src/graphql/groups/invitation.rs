//! The `GroupInvitation` type.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Group, GroupInvitationStatus, load_group};
use crate::{
    domain::groups::{Invitation, InvitationStatus},
    graphql::{
        ids::{self, NodeKind},
        users::{User, load_user},
    },
};

pub struct GroupInvitation(pub Invitation);

/// An owner's or admin's invitation of a user to a group. Only the invitee
/// and the group's owner and admins see it.
#[Object]
impl GroupInvitation {
    /// The invitation's global ID (for `node` and the answering mutations).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::GroupInvitation, self.0.id)
    }

    /// Null only if the group was deleted meanwhile.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        load_group(ctx, self.0.group_id).await
    }

    /// Who sent it; null if their account is gone (or they blocked the viewer).
    async fn inviter(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.inviter).await?)
    }

    /// Who is invited; null if their account is gone (or they blocked the
    /// viewer).
    async fn invitee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.invitee).await?)
    }

    /// When it was sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// PENDING while it waits; what the mutation that answered it made of it.
    async fn status(&self) -> GroupInvitationStatus {
        match self.0.status {
            InvitationStatus::Pending => GroupInvitationStatus::Pending,
            InvitationStatus::Accepted => GroupInvitationStatus::Accepted,
            InvitationStatus::Declined => GroupInvitationStatus::Declined,
            InvitationStatus::Revoked => GroupInvitationStatus::Revoked,
        }
    }
}
