//! Finding groups: `group`, `searchGroups`, and the lists on a user
//! (`User.groups`, `me.groupInvitations`).

use async_graphql::{
    Context, ID, Object,
    connection::{Connection, Edge},
};
use uuid::Uuid;

use super::{
    Group, GroupConnection, GroupInvitationConnection, TotalCount,
    connections::invitation_connection, find_group,
};
use crate::{
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        pagination::{Page, encode_cursor, not_a_cursor},
    },
};

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
    /// A group by ID. Needs no sign-in. Null when there is no such group, or
    /// it is private and the viewer is not a member or invitee.
    async fn group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `Group.id`.")] id: ID,
    ) -> async_graphql::Result<Option<Group>> {
        let Some(key) = ids::decode_as(&id, NodeKind::Group) else {
            return Ok(None);
        };
        find_group(ctx, key).await
    }

    /// Groups whose name contains the query, in name order: public groups, and
    /// the private ones the viewer belongs to. Needs no sign-in. `totalCount`
    /// is always null here.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn search_groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "1 to 64 characters (trimmed), none of them control characters; else `BAD_USER_INPUT`."
        )]
        query: String,
        #[graphql(
            desc = "How many to return: 0 to 100 (more is `BAD_USER_INPUT`); 20 when left out."
        )]
        first: Option<i32>,
        #[graphql(
            desc = "An `endCursor` (or edge `cursor`) of the previous page: return what comes after it."
        )]
        after: Option<String>,
    ) -> async_graphql::Result<GroupConnection> {
        let page = Page::forward(first, after)?;
        let query = query.trim();
        // PostgreSQL refuses a NUL in a pattern outright; no name holds a
        // control character anyway.
        if query.is_empty() || query.chars().count() > 64 || query.chars().any(char::is_control) {
            return Err(AppError::bad_input(
                "query",
                "query must be 1 to 64 characters, none of them control characters",
            )
            .into());
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
