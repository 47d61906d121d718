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

/// A new group's settings. A value that breaks its rule is `BAD_USER_INPUT`
/// with `extensions.field` naming it.
#[derive(InputObject)]
pub struct CreateGroupInput {
    /// 1 to 64 characters, no control characters.
    pub name: String,
    /// At most 1000 characters, no control characters; optional.
    pub description: Option<String>,
    /// Who sees and finds the group.
    pub visibility: GroupVisibility,
    /// How users get in.
    pub join_policy: GroupJoinPolicy,
}

/// Changes to a group's settings. Each field left out (or null) stays as it
/// is, but an explicit null description clears it. A value that breaks its
/// rule is `BAD_USER_INPUT` with `extensions.field` naming it.
#[derive(InputObject)]
pub struct UpdateGroupInput {
    /// The `Group.id` to change.
    pub group_id: ID,
    /// 1 to 64 characters, no control characters.
    pub name: Option<String>,
    /// At most 1000 characters, no control characters; null clears it.
    pub description: MaybeUndefined<String>,
    /// Who sees and finds the group from now on.
    pub visibility: Option<GroupVisibility>,
    /// How users get in from now on.
    pub join_policy: Option<GroupJoinPolicy>,
}

/// A group and one user in it (or to be).
#[derive(InputObject)]
pub struct GroupUserInput {
    /// The `Group.id`.
    pub group_id: ID,
    /// The `User.id`.
    pub user_id: ID,
}

/// A member's new role.
#[derive(InputObject)]
pub struct SetGroupMemberRoleInput {
    /// The `Group.id`.
    pub group_id: ID,
    /// The `User.id` of the member; not a member is `NOT_FOUND`.
    pub user_id: ID,
    /// The role to give them.
    pub role: AssignableGroupRole,
}

/// What `requestToJoinGroup` did.
#[derive(SimpleObject)]
pub struct RequestToJoinGroupPayload {
    /// The group, as the viewer now sees it.
    pub group: Group,
    /// True when the viewer is a member now.
    pub joined: bool,
    /// The pending request, when the group needs approval; null when
    /// `joined`.
    pub join_request: Option<GroupJoinRequest>,
}

/// A member of a group: what `setGroupMemberRole` changed.
#[derive(SimpleObject)]
pub struct GroupMembership {
    /// The group.
    pub group: Group,
    /// The member.
    pub user: User,
    /// Their role now.
    pub role: GroupRole,
    /// When they became a member.
    pub joined_at: DateTime<Utc>,
}

#[derive(Default)]
pub struct GroupMutation;

#[Object]
impl GroupMutation {
    /// Creates a group, with its conversation; the viewer becomes its OWNER
    /// and only member.
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new group's name, description and policies.")]
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
    /// and admins (`FORBIDDEN` for other members; `NOT_FOUND` for a group the
    /// viewer may not see).
    async fn update_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group and the settings to change.")] input: UpdateGroupInput,
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

    /// Deletes a group and everything in it (its conversation, memberships,
    /// invitations and join requests): its owner only, `FORBIDDEN` for
    /// anyone else. Returns its id.
    async fn delete_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `Group.id` to delete.")] group_id: ID,
    ) -> async_graphql::Result<ID> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&group_id, NodeKind::Group)?;
        ctx.state().groups.delete(viewer.user_id, key).await?;
        Ok(group_id)
    }

    /// Leaves a group, and its conversation. Its owner must transfer
    /// ownership first (`FORBIDDEN` until then, as for a non-member).
    async fn leave_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `Group.id` to leave.")] group_id: ID,
    ) -> async_graphql::Result<Group> {
        let viewer = ctx.require_viewer().await?;
        let key = ids::expect(&group_id, NodeKind::Group)?;
        Ok(Group(ctx.state().groups.leave(viewer.user_id, key).await?))
    }

    /// Adds one of your friends to a group you own or administer; invite
    /// anyone else (`FORBIDDEN` for a non-friend). Adding a member again
    /// changes nothing; a full group is `CONFLICT` (field `groupId`).
    async fn add_group_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group, and the friend to add.")] input: GroupUserInput,
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

    /// Removes a member, from the group and its conversation: the owner
    /// removes anyone, an admin removes members (`FORBIDDEN` otherwise). To
    /// remove yourself, use `leaveGroup`.
    async fn remove_group_member(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group, and the member to remove.")] input: GroupUserInput,
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

    /// Makes a member an admin (owner or admin) or an admin a member (owner);
    /// `FORBIDDEN` for anyone else, and for the owner's own role.
    async fn set_group_member_role(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group, the member and their new role.")]
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

    /// Hands the group to another member: the owner only. You stay on as an
    /// admin.
    async fn transfer_group_ownership(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group, and the member to hand it to.")] input: GroupUserInput,
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
    /// Inviting a member is `CONFLICT`, yourself `BAD_USER_INPUT`.
    async fn invite_to_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group, and the user to invite.")] input: GroupUserInput,
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

    /// Accepts an invitation sent to you: you join the group (a full group
    /// is `CONFLICT`). Returns it ACCEPTED; one not pending for you is
    /// `NOT_FOUND`.
    async fn accept_group_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `GroupInvitation.id` to accept.")] id: ID,
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

    /// Declines an invitation sent to you. Returns it DECLINED; one not
    /// pending for you is `NOT_FOUND`.
    async fn decline_group_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `GroupInvitation.id` to decline.")] id: ID,
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

    /// Withdraws an invitation: the group's owner and admins. Returns it
    /// REVOKED.
    async fn revoke_group_invitation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `GroupInvitation.id` to withdraw.")] id: ID,
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
        #[graphql(desc = "The `Group.id` to join.")] group_id: ID,
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

    /// Lets the requester in: the group's owner and admins. Returns it
    /// APPROVED; a full group is `CONFLICT`.
    async fn approve_join_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `GroupJoinRequest.id`.")] id: ID,
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

    /// Turns the request down: the group's owner and admins. Returns it
    /// REJECTED.
    async fn reject_join_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `GroupJoinRequest.id`.")] id: ID,
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

    /// Withdraws your own join request. Returns it CANCELLED.
    async fn cancel_join_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `GroupJoinRequest.id`.")] id: ID,
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
