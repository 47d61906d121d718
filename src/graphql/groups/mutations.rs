//! The mutations that change groups, their members, invitations and join
//! requests, with their inputs and payloads.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    AssignableGroupRole, Group, GroupInvitation, GroupJoinPolicy, GroupJoinRequest, GroupRole,
    GroupVisibility, find_group,
};
use crate::{
    domain::groups::{self, GroupChanges, JoinOutcome, NewGroup},
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        users::{User, load_user},
    },
};

#[derive(InputObject)]
pub struct CreateGroupInput {
    /// 1 to 64 characters.
    pub name: String,
    /// At most 1000 characters.
    pub description: Option<String>,
    pub visibility: GroupVisibility,
    pub join_policy: GroupJoinPolicy,
}

/// Each field left out stays as it is; an explicit null description clears it.
#[derive(InputObject)]
pub struct UpdateGroupInput {
    pub group_id: ID,
    pub name: Option<String>,
    pub description: MaybeUndefined<String>,
    pub visibility: Option<GroupVisibility>,
    pub join_policy: Option<GroupJoinPolicy>,
}

/// A group and one user in it (or to be).
#[derive(InputObject)]
pub struct GroupUserInput {
    pub group_id: ID,
    pub user_id: ID,
}

#[derive(InputObject)]
pub struct SetGroupMemberRoleInput {
    pub group_id: ID,
    pub user_id: ID,
    pub role: AssignableGroupRole,
}

/// What `requestToJoinGroup` did.
#[derive(SimpleObject)]
pub struct RequestToJoinGroupPayload {
    pub group: Group,
    /// True when the viewer is a member now.
    pub joined: bool,
    /// The pending request, when the group needs approval.
    pub join_request: Option<GroupJoinRequest>,
}

/// A member of a group: what `setGroupMemberRole` changed.
#[derive(SimpleObject)]
pub struct GroupMembership {
    pub group: Group,
    pub user: User,
    pub role: GroupRole,
    pub joined_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct GroupMutation;

#[Object]
impl GroupMutation {
    /// Creates a group; the viewer becomes its OWNER.
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        input: CreateGroupInput,
    ) -> async_graphql::Result<Group> {
        let viewer = ctx.require_viewer().await?;
        let new = NewGroup {
            name: groups::parse_name(&input.name)?,
            description: match input.description.as_deref() {
                Some(text) => groups::parse_description(text)?,
                None => None,
            },
            visibility: input.visibility.into(),
            join_policy: input.join_policy.into(),
        };
        Ok(Group(ctx.state().groups.create(viewer.user_id, new).await?))
    }

    /// Changes a group's name, description, visibility or join policy: owners
    /// and admins.
    async fn update_group(
        &self,
        ctx: &Context<'_>,
        input: UpdateGroupInput,
    ) -> async_graphql::Result<Group> {
        let viewer = ctx.require_viewer().await?;
        let group_id = ids::expect(&input.group_id, NodeKind::Group)?;
        let changes = GroupChanges {
            name: input.name.as_deref().map(groups::parse_name).transpose()?,
            description: match input.description {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(text) => Some(groups::parse_description(&text)?),
            },
            visibility: input.visibility.map(Into::into),
            join_policy: input.join_policy.map(Into::into),
        };
        Ok(Group(
            ctx.state()
                .groups
                .update(viewer.user_id, group_id, changes)
                .await?,
        ))
    }

    /// Deletes a group and everything in it: its owner only. Returns its id.
    async fn delete_group(&self, ctx: &Context<'_>, group_id: ID) -> async_graphql::Result<ID> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&group_id, NodeKind::Group)?;
        ctx.state().groups.delete(viewer.user_id, key).await?;
        Ok(group_id)
    }

    /// Leaves a group. Its owner must transfer ownership first.
    async fn leave_group(&self, ctx: &Context<'_>, group_id: ID) -> async_graphql::Result<Group> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&group_id, NodeKind::Group)?;
        Ok(Group(ctx.state().groups.leave(viewer.user_id, key).await?))
    }

    /// Adds one of your friends to a group you own or administer; invite
    /// anyone else.
    async fn add_group_member(
        &self,
        ctx: &Context<'_>,
        input: GroupUserInput,
    ) -> async_graphql::Result<Group> {
        let viewer = ctx.require_viewer().await?;
        let (group_id, user_id) = group_and_user(&input.group_id, &input.user_id)?;
        Ok(Group(
            ctx.state()
                .groups
                .add_member(viewer.user_id, group_id, user_id)
                .await?,
        ))
    }

    /// Removes a member: the owner removes anyone, an admin removes members.
    async fn remove_group_member(
        &self,
        ctx: &Context<'_>,
        input: GroupUserInput,
    ) -> async_graphql::Result<Group> {
        let viewer = ctx.require_viewer().await?;
        let (group_id, user_id) = group_and_user(&input.group_id, &input.user_id)?;
        Ok(Group(
            ctx.state()
                .groups
                .remove_member(viewer.user_id, group_id, user_id)
                .await?,
        ))
    }

    /// Makes a member an admin (owner or admin) or an admin a member (owner).
    async fn set_group_member_role(
        &self,
        ctx: &Context<'_>,
        input: SetGroupMemberRoleInput,
    ) -> async_graphql::Result<GroupMembership> {
        let viewer = ctx.require_viewer().await?;
        let (group_id, user_id) = group_and_user(&input.group_id, &input.user_id)?;
        let state = ctx.state();
        let member = state
            .groups
            .set_role(viewer.user_id, group_id, user_id, input.role.into())
            .await?;
        let group = find_group(ctx, group_id)
            .await?
            .ok_or_else(|| AppError::not_found("group not found"))?;
        let user = load_user(ctx, member.user_id)
            .await?
            .ok_or_else(|| AppError::not_found("user not found"))?;
        Ok(GroupMembership {
            group,
            user,
            role: member.role.into(),
            joined_at: member.joined_at,
        })
    }

    /// Hands the group to another member; you stay on as an admin.
    async fn transfer_group_ownership(
        &self,
        ctx: &Context<'_>,
        input: GroupUserInput,
    ) -> async_graphql::Result<Group> {
        let viewer = ctx.require_viewer().await?;
        let (group_id, user_id) = group_and_user(&input.group_id, &input.user_id)?;
        Ok(Group(
            ctx.state()
                .groups
                .transfer_ownership(viewer.user_id, group_id, user_id)
                .await?,
        ))
    }

    /// Invites a user (owners and admins). Inviting again returns the same
    /// invitation; inviting someone who asked to join lets them in (ACCEPTED).
    async fn invite_to_group(
        &self,
        ctx: &Context<'_>,
        input: GroupUserInput,
    ) -> async_graphql::Result<GroupInvitation> {
        let viewer = ctx.require_viewer().await?;
        let (group_id, user_id) = group_and_user(&input.group_id, &input.user_id)?;
        Ok(GroupInvitation(
            ctx.state()
                .groups
                .invite(viewer.user_id, group_id, user_id)
                .await?,
        ))
    }

    async fn accept_group_invitation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<GroupInvitation> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&id, NodeKind::GroupInvitation)?;
        Ok(GroupInvitation(
            ctx.state()
                .groups
                .accept_invitation(viewer.user_id, key)
                .await?,
        ))
    }

    async fn decline_group_invitation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<GroupInvitation> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&id, NodeKind::GroupInvitation)?;
        Ok(GroupInvitation(
            ctx.state()
                .groups
                .decline_invitation(viewer.user_id, key)
                .await?,
        ))
    }

    /// Withdraws an invitation: the group's owner and admins.
    async fn revoke_group_invitation(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<GroupInvitation> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&id, NodeKind::GroupInvitation)?;
        Ok(GroupInvitation(
            ctx.state()
                .groups
                .revoke_invitation(viewer.user_id, key)
                .await?,
        ))
    }

    /// Joins an OPEN group at once, asks to join an APPROVAL group, and is
    /// FORBIDDEN for an INVITE_ONLY one, unless you hold an invitation, which
    /// lets you in. Asking again returns the same request.
    async fn request_to_join_group(
        &self,
        ctx: &Context<'_>,
        group_id: ID,
    ) -> async_graphql::Result<RequestToJoinGroupPayload> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&group_id, NodeKind::Group)?;
        let outcome = ctx
            .state()
            .groups
            .request_to_join(viewer.user_id, key)
            .await?;
        let group = find_group(ctx, key)
            .await?
            .ok_or_else(|| AppError::not_found("group not found"))?;
        Ok(match outcome {
            JoinOutcome::Joined => RequestToJoinGroupPayload {
                group,
                joined: true,
                join_request: None,
            },
            JoinOutcome::Requested(request) => RequestToJoinGroupPayload {
                group,
                joined: false,
                join_request: Some(GroupJoinRequest(request)),
            },
        })
    }

    /// Lets the requester in: the group's owner and admins.
    async fn approve_join_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<GroupJoinRequest> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&id, NodeKind::GroupJoinRequest)?;
        Ok(GroupJoinRequest(
            ctx.state()
                .groups
                .approve_join_request(viewer.user_id, key)
                .await?,
        ))
    }

    /// Turns the request down: the group's owner and admins.
    async fn reject_join_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<GroupJoinRequest> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&id, NodeKind::GroupJoinRequest)?;
        Ok(GroupJoinRequest(
            ctx.state()
                .groups
                .reject_join_request(viewer.user_id, key)
                .await?,
        ))
    }

    /// Withdraws your own join request.
    async fn cancel_join_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> async_graphql::Result<GroupJoinRequest> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&id, NodeKind::GroupJoinRequest)?;
        Ok(GroupJoinRequest(
            ctx.state()
                .groups
                .cancel_join_request(viewer.user_id, key)
                .await?,
        ))
    }
}

fn group_and_user(group_id: &ID, user_id: &ID) -> AppResult<(Uuid, Uuid)> {
    Ok((
        ids::expect(group_id, NodeKind::Group)?,
        ids::expect(user_id, NodeKind::User)?,
    ))
}
