//! The `GroupJoinRequest` type.

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Group, GroupJoinRequestStatus, load_group};
use crate::{
    domain::groups::{JoinRequest, JoinRequestStatus},
    graphql::{
        ids::{self, NodeKind},
        users::{User, load_user},
    },
};

pub struct GroupJoinRequest(pub JoinRequest);

/// A user's request to join an APPROVAL group. Only the requester and the
/// group's owner and admins see it.
#[Object]
impl GroupJoinRequest {
    /// The request's global ID (for `node` and the answering mutations).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::GroupJoinRequest, self.0.id)
    }

    /// Null only if the group was deleted meanwhile.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        load_group(ctx, self.0.group_id).await
    }

    /// Who asked to join; null if their account is gone (or they blocked the
    /// viewer).
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.user_id).await?)
    }

    /// When it was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// PENDING while it waits; what the mutation that answered it made of it.
    async fn status(&self) -> GroupJoinRequestStatus {
        match self.0.status {
            JoinRequestStatus::Pending => GroupJoinRequestStatus::Pending,
            JoinRequestStatus::Approved => GroupJoinRequestStatus::Approved,
            JoinRequestStatus::Rejected => GroupJoinRequestStatus::Rejected,
            JoinRequestStatus::Cancelled => GroupJoinRequestStatus::Cancelled,
        }
    }
}
