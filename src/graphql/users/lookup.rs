//! The user queries: the viewer, a user by id or username, and search.

use async_graphql::{
    Context, ID, Object,
    connection::{Connection, Edge},
};
use entity::user;

use super::{User, visible};
use crate::{
    domain::{social, users},
    error::AppError,
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        pagination::{Page, encode_cursor},
        social::{UserConnection, UserConnectionFields},
    },
};

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    // Single-object lookups go to the user cache, not the loader: there is
    // nothing to batch, and a loader would add its batching delay to every
    // request.

    // Nullable, so that sibling fields still resolve for a signed-out request.

    /// The signed-in user, their owner-only fields included. Without a
    /// (valid) token it is null with an `UNAUTHENTICATED` error, and the
    /// other fields of the query still resolve.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let viewer = ctx.require_viewer().await?;
        let state = ctx.state();
        Ok(
            users::find_cached(&state.db, &state.profiles, viewer.user_id)
                .await?
                .map(User::new),
        )
    }

    /// A user by ID; null when there is none, the ID is not a user's, or
    /// they blocked the viewer. Needs no sign-in.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A `User.id`.")] id: ID,
    ) -> async_graphql::Result<Option<User>> {
        let Some(key) = ids::decode_as(&id, NodeKind::User) else {
            return Ok(None);
        };
        let state = ctx.state();
        let found = users::find_cached(&state.db, &state.profiles, key).await?;
        Ok(visible(ctx, found).await?)
    }

    /// A user by username; null when there is none, or they blocked the
    /// viewer. Needs no sign-in.
    async fn user_by_username(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The username; case does not matter.")] username: String,
    ) -> async_graphql::Result<Option<User>> {
        Ok(visible(
            ctx,
            users::find_by_username(&ctx.state().db, &username).await?,
        )
        .await?)
    }

    /// Users whose username starts with, or whose display name contains, the
    /// query; in username order, leaving out anyone who blocked the viewer.
    /// Needs no sign-in. `totalCount` is always null here.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn search_users(
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
    ) -> async_graphql::Result<UserConnection> {
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
        let viewer = ctx.viewer().await?.map(|v| v.user_id);
        // Anyone who blocked the viewer is left out, as from every list.
        let shown =
            viewer.map(|viewer| social::not_hidden_from(viewer, (user::Entity, user::Column::Id)));
        let mut found = users::search(
            &ctx.state().db,
            query,
            shown,
            page.after.as_deref(),
            page.fetch_limit(),
        )
        .await?;
        let has_next = found.len() > page.first;
        found.truncate(page.first);
        let mut connection = Connection::with_additional_fields(
            page.after.is_some(),
            has_next,
            UserConnectionFields { total_count: None },
        );
        connection.edges.extend(
            found
                .into_iter()
                .map(|user| Edge::new(encode_cursor(&user.username), User::new(user))),
        );
        Ok(connection)
    }
}
