//! The `Group` type: its settings, the viewer's role, and the lists in it
//! (members, and for its managers invitations and join requests).

use async_graphql::{
    Context, ID, Object,
    connection::{Connection, Edge},
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use entity::group;
use uuid::Uuid;

use super::{
    GroupInvitationConnection, GroupJoinPolicy, GroupJoinRequest, GroupJoinRequestConnection,
    GroupMemberConnection, GroupRole, GroupVisibility, MemberEdgeFields, TotalCount,
    connections::invitation_connection,
};
use crate::{
    domain::groups,
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        chat::{self, Conversation},
        ids::{self, NodeKind},
        loaders::{GroupLoader, GroupRoleLoader},
        pagination::{Page, encode_cursor},
        social::users_in_order,
        users::User,
    },
};

// The `Group` type.
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

/// A group of users with a shared conversation, led by its owner and admins.
/// A PRIVATE group is seen only by its members and invitees.
#[Object]
impl Group {
    /// The group's global ID (for `node`, `group` and the group mutations).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::Group, self.0.id)
    }

    /// 1 to 64 characters; not unique.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// At most 1000 characters; null when it has none.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Who sees and finds the group.
    async fn visibility(&self) -> GroupVisibility {
        match groups::Visibility::from_stored(&self.0.visibility) {
            groups::Visibility::Public => GroupVisibility::Public,
            groups::Visibility::Private => GroupVisibility::Private,
        }
    }

    /// How users get in.
    async fn join_policy(&self) -> GroupJoinPolicy {
        match groups::JoinPolicy::from_stored(&self.0.join_policy) {
            groups::JoinPolicy::Open => GroupJoinPolicy::Open,
            groups::JoinPolicy::Approval => GroupJoinPolicy::Approval,
            groups::JoinPolicy::InviteOnly => GroupJoinPolicy::InviteOnly,
        }
    }

    /// How many members it has, the owner included (at most 10,000 by
    /// default).
    async fn member_count(&self) -> i64 {
        self.0.member_count
    }

    /// The viewer's role in the group; null when they are not a member (or
    /// signed out).
    async fn viewer_role(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<GroupRole>> {
        Ok(self.role_of_viewer(ctx).await?.map(GroupRole::from))
    }

    /// Members in the order they joined, optionally of one role, leaving out
    /// anyone who blocked the viewer. Null on a private group the viewer is
    /// not a member of.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn members(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many to return: 0 to 100 (more is `BAD_USER_INPUT`); 20 when left out."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "An `endCursor` (or edge `cursor`) of the previous page: return what comes after it."
        )]
        after: Option<String>,
        #[graphql(
            desc = "Only members of this role (`totalCount` is then null); all when left out."
        )]
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

    /// Pending invitations, newest first. Owners and admins only: null to
    /// everyone else.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn invitations(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many to return: 0 to 100 (more is `BAD_USER_INPUT`); 20 when left out."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "An `endCursor` (or edge `cursor`) of the previous page: return what comes after it."
        )]
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

    /// Pending join requests, oldest first. Owners and admins only: null to
    /// everyone else.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn join_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many to return: 0 to 100 (more is `BAD_USER_INPUT`); 20 when left out."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "An `endCursor` (or edge `cursor`) of the previous page: return what comes after it."
        )]
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

    /// The group's conversation, which every member takes part in; null for
    /// non-members.
    async fn conversation(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Conversation>> {
        chat::group_conversation(ctx, self.0.id).await
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

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
