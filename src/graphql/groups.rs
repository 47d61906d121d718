//! Groups in GraphQL: the `Group` type, its members, invitations and join
//! requests, search, and the mutations that change them.

use async_graphql::{
    Context, Enum, ID, InputObject, MaybeUndefined, Object, OutputType, SimpleObject,
    connection::{Connection, ConnectionNameType, Edge, EdgeNameType, EmptyFields},
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use entity::group;
use uuid::Uuid;

use crate::{
    domain::groups::{
        self, GroupChanges, Invitation, InvitationStatus, JoinOutcome, JoinRequest,
        JoinRequestStatus, NewGroup,
    },
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        chat::{self, Conversation},
        ids::{self, NodeKind},
        loaders::{GroupLoader, GroupRoleLoader},
        pagination::{Page, encode_cursor, not_a_cursor},
        social::users_in_order,
        users::{User, load_user},
    },
};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupVisibility {
    Public,
    /// Seen and found by its members and the users invited to it only.
    Private,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupJoinPolicy {
    /// Anyone who can see the group joins at once.
    Open,
    /// Joining is a request an owner or admin approves.
    Approval,
    /// Only by invitation.
    InviteOnly,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupRole {
    Owner,
    Admin,
    Member,
}

/// The roles `setGroupMemberRole` gives; ownership moves by
/// `transferGroupOwnership`.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum AssignableGroupRole {
    Admin,
    Member,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupInvitationStatus {
    Pending,
    Accepted,
    Declined,
    Revoked,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum GroupJoinRequestStatus {
    Pending,
    Approved,
    Rejected,
    Cancelled,
}

impl From<GroupVisibility> for groups::Visibility {
    fn from(value: GroupVisibility) -> Self {
        match value {
            GroupVisibility::Public => Self::Public,
            GroupVisibility::Private => Self::Private,
        }
    }
}

impl From<GroupJoinPolicy> for groups::JoinPolicy {
    fn from(value: GroupJoinPolicy) -> Self {
        match value {
            GroupJoinPolicy::Open => Self::Open,
            GroupJoinPolicy::Approval => Self::Approval,
            GroupJoinPolicy::InviteOnly => Self::InviteOnly,
        }
    }
}

impl From<groups::Role> for GroupRole {
    fn from(role: groups::Role) -> Self {
        match role {
            groups::Role::Owner => Self::Owner,
            groups::Role::Admin => Self::Admin,
            groups::Role::Member => Self::Member,
        }
    }
}

impl From<GroupRole> for groups::Role {
    fn from(role: GroupRole) -> Self {
        match role {
            GroupRole::Owner => Self::Owner,
            GroupRole::Admin => Self::Admin,
            GroupRole::Member => Self::Member,
        }
    }
}

impl From<AssignableGroupRole> for groups::Role {
    fn from(role: AssignableGroupRole) -> Self {
        match role {
            AssignableGroupRole::Admin => Self::Admin,
            AssignableGroupRole::Member => Self::Member,
        }
    }
}

/// The `Group` type.
pub struct Group(pub group::Model);

impl Group {
    /// The viewer's role, through the request's loader; `None` for a non-member
    /// or an anonymous viewer.
    async fn role_of_viewer(&self, ctx: &Context<'_>) -> AppResult<Option<groups::Role>> {
        let Some(viewer) = ctx.viewer().await? else {
            return Ok(None);
        };
        ctx.data_unchecked::<DataLoader<GroupRoleLoader>>()
            .load_one((viewer.user_id, self.0.id))
            .await
            .map_err(|err| AppError::Internal(anyhow::anyhow!("loading a group role: {err}")))
    }

    /// Invitations and join requests are their managers' business alone.
    async fn viewer_manages(&self, ctx: &Context<'_>) -> AppResult<bool> {
        Ok(self
            .role_of_viewer(ctx)
            .await?
            .is_some_and(groups::Role::manages))
    }
}

#[Object]
impl Group {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Group, self.0.id)
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    async fn visibility(&self) -> GroupVisibility {
        match groups::Visibility::from_stored(&self.0.visibility) {
            groups::Visibility::Public => GroupVisibility::Public,
            groups::Visibility::Private => GroupVisibility::Private,
        }
    }

    async fn join_policy(&self) -> GroupJoinPolicy {
        match groups::JoinPolicy::from_stored(&self.0.join_policy) {
            groups::JoinPolicy::Open => GroupJoinPolicy::Open,
            groups::JoinPolicy::Approval => GroupJoinPolicy::Approval,
            groups::JoinPolicy::InviteOnly => GroupJoinPolicy::InviteOnly,
        }
    }

    /// Members, the owner included.
    async fn member_count(&self) -> i64 {
        self.0.member_count
    }

    /// Null when the viewer is not a member.
    async fn viewer_role(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GroupRole>> {
        Ok(self.role_of_viewer(ctx).await?.map(GroupRole::from))
    }

    /// Members in the order they joined, optionally of one role. Null on a
    /// private group the viewer is not a member of.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        role: Option<GroupRole>,
    ) -> async_graphql::Result<Option<GroupMemberConnection>> {
        let page = Page::forward(first, after)?;
        let after = page.after_uuid()?;
        let private =
            groups::Visibility::from_stored(&self.0.visibility) == groups::Visibility::Private;
        if private && self.role_of_viewer(ctx).await?.is_none() {
            return Ok(None);
        }
        let viewer = ctx.viewer().await?.map(|v| v.user_id);
        let mut members = ctx
            .state()
            .groups
            .members(
                self.0.id,
                viewer,
                role.map(Into::into),
                after,
                page.fetch_limit(),
            )
            .await?;
        let has_next = members.len() > page.first;
        members.truncate(page.first);
        let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
        let mut users: std::collections::HashMap<Uuid, User> = users_in_order(ctx, &ids)
            .await?
            .into_iter()
            .map(|user| (user.0.id, user))
            .collect();
        let mut connection = Connection::with_additional_fields(
            page.after.is_some(),
            has_next,
            TotalCount {
                total_count: role.is_none().then_some(self.0.member_count),
            },
        );
        connection
            .edges
            .extend(members.into_iter().filter_map(|member| {
                let user = users.remove(&member.user_id)?;
                Some(Edge::with_additional_fields(
                    encode_cursor(&member.id.to_string()),
                    user,
                    MemberEdgeFields {
                        role: member.role.into(),
                        joined_at: member.joined_at,
                    },
                ))
            }));
        Ok(Some(connection))
    }

    /// Pending invitations, newest first. Owners and admins only.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<GroupInvitationConnection>> {
        if !self.viewer_manages(ctx).await? {
            return Ok(None);
        }
        let page = Page::forward(first, after)?;
        let before = page.after_uuid()?;
        let invitations = ctx
            .state()
            .groups
            .invitations_of(self.0.id, before, page.fetch_limit())
            .await?;
        Ok(Some(invitation_connection(&page, invitations)))
    }

    /// Pending join requests, oldest first. Owners and admins only.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn join_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<GroupJoinRequestConnection>> {
        if !self.viewer_manages(ctx).await? {
            return Ok(None);
        }
        let page = Page::forward(first, after)?;
        let after = page.after_uuid()?;
        let mut requests = ctx
            .state()
            .groups
            .join_requests_of(self.0.id, after, page.fetch_limit())
            .await?;
        let has_next = requests.len() > page.first;
        requests.truncate(page.first);
        let mut connection = Connection::with_additional_fields(
            page.after.is_some(),
            has_next,
            TotalCount { total_count: None },
        );
        connection.edges.extend(requests.into_iter().map(|request| {
            Edge::new(
                encode_cursor(&request.id.to_string()),
                GroupJoinRequest(request),
            )
        }));
        Ok(Some(connection))
    }

    /// The group's conversation; null for non-members.
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        chat::group_conversation(ctx, self.0.id).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// `totalCount` on connections that know it cheaply; null where they do not.
#[derive(SimpleObject)]
pub struct TotalCount {
    pub total_count: Option<i64>,
}

/// A member's place in the group, on each edge of `Group.members`.
#[derive(SimpleObject)]
pub struct MemberEdgeFields {
    pub role: GroupRole,
    pub joined_at: DateTime<Utc>,
}

pub struct GroupMemberConnectionName;

impl ConnectionNameType for GroupMemberConnectionName {
    fn type_name<T: OutputType>() -> String {
        "GroupMemberConnection".into()
    }
}

pub struct GroupMemberEdgeName;

impl EdgeNameType for GroupMemberEdgeName {
    fn type_name<T: OutputType>() -> String {
        "GroupMemberEdge".into()
    }
}

pub type GroupMemberConnection = Connection<
    String,
    User,
    TotalCount,
    MemberEdgeFields,
    GroupMemberConnectionName,
    GroupMemberEdgeName,
>;
pub type GroupConnection = Connection<String, Group, TotalCount, EmptyFields>;
pub type GroupInvitationConnection = Connection<String, GroupInvitation, TotalCount, EmptyFields>;
pub type GroupJoinRequestConnection = Connection<String, GroupJoinRequest, TotalCount, EmptyFields>;

/// A group as its invitation or join request shows it. The group is read
/// without the visibility check: an invitee may see the private group they are
/// invited to, and its managers see their own group.
pub async fn load_group(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Group>> {
    Ok(ctx
        .data_unchecked::<DataLoader<GroupLoader>>()
        .load_one(id)
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("loading a group: {err}")))?
        .map(Group))
}

pub struct GroupInvitation(pub Invitation);

#[Object]
impl GroupInvitation {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::GroupInvitation, self.0.id)
    }

    /// Null only if the group was deleted meanwhile.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        load_group(ctx, self.0.group_id).await
    }

    async fn inviter(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.inviter).await?)
    }

    async fn invitee(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.invitee).await?)
    }

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

pub struct GroupJoinRequest(pub JoinRequest);

#[Object]
impl GroupJoinRequest {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::GroupJoinRequest, self.0.id)
    }

    /// Null only if the group was deleted meanwhile.
    async fn group(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Group>> {
        load_group(ctx, self.0.group_id).await
    }

    /// Who asked to join.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.user_id).await?)
    }

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

fn invitation_connection(
    page: &Page,
    mut invitations: Vec<Invitation>,
) -> GroupInvitationConnection {
    let has_next = invitations.len() > page.first;
    invitations.truncate(page.first);
    let mut connection = Connection::with_additional_fields(
        page.after.is_some(),
        has_next,
        TotalCount { total_count: None },
    );
    connection
        .edges
        .extend(invitations.into_iter().map(|invitation| {
            Edge::new(
                encode_cursor(&invitation.id.to_string()),
                GroupInvitation(invitation),
            )
        }));
    connection
}

/// `User.groups`: the groups a user belongs to, as the viewer may see them.
pub async fn groups_of_user(
    ctx: &Context<'_>,
    owner: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> AppResult<GroupConnection> {
    let page = Page::forward(first, after)?;
    let after = page.after_uuid()?;
    let viewer = ctx.viewer().await?.map(|v| v.user_id);
    let mut found = ctx
        .state()
        .groups
        .groups_of(owner, viewer, after, page.fetch_limit())
        .await?;
    let has_next = found.len() > page.first;
    found.truncate(page.first);
    let mut connection = Connection::with_additional_fields(
        page.after.is_some(),
        has_next,
        TotalCount { total_count: None },
    );
    connection
        .edges
        .extend(found.into_iter().map(|(membership, group)| {
            Edge::new(encode_cursor(&membership.to_string()), Group(group))
        }));
    Ok(connection)
}

/// `me.groupInvitations`: the viewer's pending invitations, newest first.
pub async fn invitations_of_user(
    ctx: &Context<'_>,
    owner: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> AppResult<Option<GroupInvitationConnection>> {
    let Some(viewer) = ctx.viewer().await?.filter(|v| v.user_id == owner) else {
        return Ok(None);
    };
    let page = Page::forward(first, after)?;
    let before = page.after_uuid()?;
    let invitations = ctx
        .state()
        .groups
        .invitations_to(viewer.user_id, before, page.fetch_limit())
        .await?;
    Ok(Some(invitation_connection(&page, invitations)))
}

#[derive(Default)]
pub struct GroupQuery;

#[Object]
impl GroupQuery {
    /// Null when there is no such group or it is private and the viewer is not
    /// a member or invitee.
    async fn group(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Group>> {
        let Some(key) = ids::decode_as(&id, NodeKind::Group) else {
            return Ok(None);
        };
        find_group(ctx, key).await
    }

    /// Groups whose name contains the query, in name order: public groups, and
    /// the private ones the viewer belongs to.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn search_groups(
        &self,
        ctx: &Context<'_>,
        query: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<GroupConnection> {
        let page = Page::forward(first, after)?;
        let query = query.trim();
        if query.is_empty() || query.chars().count() > 64 {
            return Err(AppError::bad_input("query", "query must be 1 to 64 characters").into());
        }
        // The cursor is `id:name key`: ids hold no colon.
        let after = page
            .after
            .as_deref()
            .map(|cursor| {
                cursor
                    .split_once(':')
                    .and_then(|(id, key)| Some((key.to_owned(), Uuid::try_parse(id).ok()?)))
                    .ok_or_else(not_a_cursor)
            })
            .transpose()?;
        let viewer = ctx.viewer().await?.map(|v| v.user_id);
        let mut found = ctx
            .state()
            .groups
            .search(viewer, query, after, page.fetch_limit())
            .await?;
        let has_next = found.len() > page.first;
        found.truncate(page.first);
        let mut connection = Connection::with_additional_fields(
            page.after.is_some(),
            has_next,
            TotalCount { total_count: None },
        );
        connection.edges.extend(found.into_iter().map(|group| {
            Edge::new(
                encode_cursor(&format!("{}:{}", group.id, group.name_key)),
                Group(group),
            )
        }));
        Ok(connection)
    }
}

/// A group as the viewer may see it.
pub async fn find_group(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Group>> {
    let viewer = ctx.viewer().await?.map(|v| v.user_id);
    Ok(ctx
        .state()
        .groups
        .find_visible(viewer, id)
        .await?
        .map(Group))
}

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
