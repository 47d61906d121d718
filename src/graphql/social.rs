//! The social graph in GraphQL: friend requests, friends, blocks, suggestions.

use std::collections::HashMap;

use async_graphql::{
    Context, Enum, ID, InputObject, Object, SimpleObject,
    connection::{Connection, Edge},
    dataloader::DataLoader,
};
use chrono::{DateTime, Utc};
use entity::user;
use uuid::Uuid;

use crate::{
    domain::{
        social::{self, FriendRequest as Request, RequestStatus},
        users,
    },
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        loaders::{MutualCountLoader, RelationshipLoader},
        pagination::{Page, encode_cursor},
        users::{User, load_user},
    },
};

/// How the viewer stands to a user.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Relationship {
    /// The user is the viewer.
    #[graphql(name = "SELF")]
    Myself,
    /// Neither friends nor a pending request between them.
    None,
    /// They are friends.
    Friends,
    /// The viewer asked them to be friends; they have not answered yet.
    RequestSent,
    /// They asked the viewer to be friends; the viewer has not answered yet.
    RequestReceived,
    /// The viewer blocked them.
    Blocked,
}

impl From<social::Relationship> for Relationship {
    fn from(relationship: social::Relationship) -> Self {
        match relationship {
            social::Relationship::Myself => Self::Myself,
            social::Relationship::None => Self::None,
            social::Relationship::Friends => Self::Friends,
            social::Relationship::RequestSent => Self::RequestSent,
            social::Relationship::RequestReceived => Self::RequestReceived,
            social::Relationship::Blocked => Self::Blocked,
        }
    }
}

/// Who may see a user's friend list.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum FriendListVisibility {
    /// Anyone, signed in or not.
    Everyone,
    /// Their friends (the default).
    Friends,
    /// Nobody but the user.
    OnlyMe,
}

impl From<FriendListVisibility> for social::FriendListVisibility {
    fn from(value: FriendListVisibility) -> Self {
        match value {
            FriendListVisibility::Everyone => Self::Everyone,
            FriendListVisibility::Friends => Self::Friends,
            FriendListVisibility::OnlyMe => Self::OnlyMe,
        }
    }
}

impl From<social::FriendListVisibility> for FriendListVisibility {
    fn from(value: social::FriendListVisibility) -> Self {
        match value {
            social::FriendListVisibility::Everyone => Self::Everyone,
            social::FriendListVisibility::Friends => Self::Friends,
            social::FriendListVisibility::OnlyMe => Self::OnlyMe,
        }
    }
}

/// Where a friend request stands.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum FriendRequestStatus {
    /// Waiting for the recipient's answer.
    Pending,
    /// The recipient accepted: the two are friends.
    Accepted,
    /// The recipient declined it.
    Declined,
    /// The sender withdrew it.
    Cancelled,
}

pub struct FriendRequest(pub Request);

/// One user's request to be friends with another. Only its sender and its
/// recipient see it.
#[Object]
impl FriendRequest {
    /// The request's global ID (for `node` and the answering mutations).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::FriendRequest, self.0.id)
    }

    /// Null only if the sender's account is gone.
    async fn from(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.from).await?)
    }

    /// The recipient; null only if their account is gone.
    async fn to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        Ok(load_user(ctx, self.0.to).await?)
    }

    /// The sender's note, at most 500 characters; null when they wrote none.
    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    /// When it was sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// PENDING while it waits; what the mutation that answered it made of it.
    async fn status(&self) -> FriendRequestStatus {
        match self.0.status {
            RequestStatus::Pending => FriendRequestStatus::Pending,
            RequestStatus::Accepted => FriendRequestStatus::Accepted,
            RequestStatus::Declined => FriendRequestStatus::Declined,
            RequestStatus::Cancelled => FriendRequestStatus::Cancelled,
        }
    }
}

// The fields every connection of users adds: `totalCount`, null where
// counting is not cheap (search). Flattened into `UserConnection`: this type
// is no type of the schema's, only its field is.
#[derive(SimpleObject)]
pub struct UserConnectionFields {
    /// How many users the whole list holds, over all pages; null where the
    /// list cannot count cheaply (search, blocked users).
    pub total_count: Option<i64>,
}

pub type UserConnection = Connection<String, User, UserConnectionFields>;

// Flattened into `FriendRequestConnection`, as `UserConnectionFields` is.
#[derive(SimpleObject)]
pub struct FriendRequestConnectionFields {
    /// Always null for now: the requests are not counted.
    pub total_count: Option<i64>,
}

pub type FriendRequestConnection = Connection<String, FriendRequest, FriendRequestConnectionFields>;

/// A friend of friends, with how many friends they share with the viewer.
#[derive(SimpleObject)]
pub struct FriendSuggestion {
    /// The suggested user: neither a friend of the viewer's, nor in a pending
    /// request or a block with them.
    pub user: User,
    /// How many friends the viewer and they have in common.
    pub mutual_friends_count: i64,
}

/// The users of a page of ids, in the page's order, through the profile cache
/// (at most one query). A page is already a batch, so it skips the loader and
/// its batching delay.
pub async fn users_in_order(ctx: &Context<'_>, ids: &[Uuid]) -> AppResult<Vec<User>> {
    let state = ctx.state();
    let mut found = users::find_many_cached(&state.db, &state.profiles, ids).await?;
    Ok(ids
        .iter()
        .filter_map(|id| found.remove(id))
        .map(User::new)
        .collect())
}

/// A connection of users from a page of ids fetched one past the page.
async fn user_connection(
    ctx: &Context<'_>,
    page: &Page,
    mut ids: Vec<Uuid>,
    total_count: Option<i64>,
) -> AppResult<UserConnection> {
    let has_next = ids.len() > page.first;
    ids.truncate(page.first);
    let users = users_in_order(ctx, &ids).await?;
    let mut connection = Connection::with_additional_fields(
        page.after.is_some(),
        has_next,
        UserConnectionFields { total_count },
    );
    connection.edges.extend(
        users
            .into_iter()
            .map(|user| Edge::new(encode_cursor(&user.0.id.to_string()), user)),
    );
    Ok(connection)
}

fn wants_total_count(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// `User.friends`: null when the owner's setting hides the list from the viewer.
pub async fn friends(
    ctx: &Context<'_>,
    owner: &user::Model,
    first: Option<i32>,
    after: Option<String>,
) -> AppResult<Option<UserConnection>> {
    let page = Page::forward(first, after)?;
    let after = page.after_uuid()?;
    let viewer = ctx.viewer().await?.map(|v| v.user_id);
    let social = &ctx.state().social;
    if !social.may_see_friends(owner, viewer).await? {
        return Ok(None);
    }
    let ids = social
        .friends(owner.id, viewer, after, page.fetch_limit())
        .await?;
    Ok(Some(
        user_connection(ctx, &page, ids, Some(owner.friend_count)).await?,
    ))
}

/// `User.mutualFriends`: the friends the viewer shares with the user; null for an
/// anonymous viewer and for the viewer's own profile.
pub async fn mutual_friends(
    ctx: &Context<'_>,
    other: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> AppResult<Option<UserConnection>> {
    let page = Page::forward(first, after)?;
    let after = page.after_uuid()?;
    let Some(viewer) = ctx
        .viewer()
        .await?
        .map(|v| v.user_id)
        .filter(|v| *v != other)
    else {
        return Ok(None);
    };
    let total = if wants_total_count(ctx) {
        let loader = ctx.data_unchecked::<DataLoader<MutualCountLoader>>();
        Some(
            loader
                .load_one((viewer, other))
                .await
                .map_err(|err| {
                    AppError::Internal(anyhow::anyhow!("counting mutual friends: {err}"))
                })?
                .unwrap_or(0),
        )
    } else {
        None
    };
    // Only a count asked for: no page of users to fetch.
    let selection = ctx.look_ahead();
    let wants_page = ["edges", "nodes", "pageInfo"]
        .iter()
        .any(|field| selection.field(field).exists());
    let ids = if page.first == 0 || !wants_page {
        Vec::new()
    } else {
        ctx.state()
            .social
            .mutual_friends(viewer, other, after, page.fetch_limit())
            .await?
    };
    Ok(Some(user_connection(ctx, &page, ids, total).await?))
}

pub async fn viewer_relationship(
    ctx: &Context<'_>,
    other: Uuid,
) -> AppResult<Option<Relationship>> {
    let Some(viewer) = ctx.viewer().await? else {
        return Ok(None);
    };
    let loader = ctx.data_unchecked::<DataLoader<RelationshipLoader>>();
    Ok(loader
        .load_one((viewer.user_id, other))
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("loading a relationship: {err}")))?
        .map(Relationship::from))
}

/// `me.incomingFriendRequests` and `me.outgoingFriendRequests`, newest first.
pub async fn friend_requests(
    ctx: &Context<'_>,
    owner: Uuid,
    incoming: bool,
    first: Option<i32>,
    after: Option<String>,
) -> AppResult<Option<FriendRequestConnection>> {
    let Some(viewer) = ctx.viewer().await?.filter(|v| v.user_id == owner) else {
        return Ok(None);
    };
    let page = Page::forward(first, after)?;
    let before = page.after_uuid()?;
    let mut requests = ctx
        .state()
        .social
        .requests(viewer.user_id, incoming, before, page.fetch_limit())
        .await?;
    let has_next = requests.len() > page.first;
    requests.truncate(page.first);
    let mut connection = Connection::with_additional_fields(
        page.after.is_some(),
        has_next,
        FriendRequestConnectionFields { total_count: None },
    );
    connection.edges.extend(requests.into_iter().map(|request| {
        Edge::new(
            encode_cursor(&request.id.to_string()),
            FriendRequest(request),
        )
    }));
    Ok(Some(connection))
}

/// `me.blockedUsers`.
pub async fn blocked_users(
    ctx: &Context<'_>,
    owner: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> AppResult<Option<UserConnection>> {
    let Some(viewer) = ctx.viewer().await?.filter(|v| v.user_id == owner) else {
        return Ok(None);
    };
    let page = Page::forward(first, after)?;
    let after = page.after_uuid()?;
    let ids = ctx
        .state()
        .social
        .blocked_users(viewer.user_id, after, page.fetch_limit())
        .await?;
    Ok(Some(user_connection(ctx, &page, ids, None).await?))
}

#[derive(Default)]
pub struct SocialQuery;

#[Object]
impl SocialQuery {
    /// Friends of friends, most mutual friends first (leaving out whoever is
    /// in a pending request or a block with the viewer).
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn friend_suggestions(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "How many to return: 0 to 100 (more is `BAD_USER_INPUT`); 20 when left out."
        )]
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<FriendSuggestion>> {
        let viewer = ctx.require_viewer().await?;
        let page = Page::forward(first, None)?;
        let suggestions = ctx
            .state()
            .social
            .suggestions(viewer.user_id, page.first as u64)
            .await?;
        let ids: Vec<Uuid> = suggestions.iter().map(|(id, _)| *id).collect();
        let counts: HashMap<Uuid, i64> = suggestions.into_iter().collect();
        // A suggested account deleted meanwhile is simply left out.
        Ok(users_in_order(ctx, &ids)
            .await?
            .into_iter()
            .map(|user| FriendSuggestion {
                mutual_friends_count: counts.get(&user.0.id).copied().unwrap_or(0),
                user,
            })
            .collect())
    }
}

/// A friend request to send.
#[derive(InputObject)]
pub struct SendFriendRequestInput {
    /// The `User.id` of whom to ask.
    pub user_id: ID,
    /// An optional note, at most 500 characters (trimmed; line breaks
    /// allowed, other control characters not).
    pub message: Option<String>,
}

#[derive(Default)]
pub struct SocialMutation;

#[Object]
impl SocialMutation {
    /// Asks a user to be friends. If they already asked you, you become friends
    /// and their request comes back ACCEPTED. Asking twice returns the same
    /// request. Asking yourself is `BAD_USER_INPUT`, a friend `CONFLICT`, a
    /// user you blocked `FORBIDDEN`, and one who does not exist (or blocked
    /// you) `NOT_FOUND`.
    async fn send_friend_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whom to ask, and an optional note.")] input: SendFriendRequestInput,
    ) -> async_graphql::Result<FriendRequest> {
        let viewer = ctx.require_viewer().await?;
        let to = ids::expect(&input.user_id, NodeKind::User)?;
        let request = ctx
            .state()
            .social
            .send_request(viewer.user_id, to, input.message)
            .await?;
        Ok(FriendRequest(request))
    }

    /// Accepts a request sent to you: you become friends. Returns it
    /// ACCEPTED; one that is not pending for you (any more) is `NOT_FOUND`.
    async fn accept_friend_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `FriendRequest.id` to accept.")] id: ID,
    ) -> async_graphql::Result<FriendRequest> {
        answer(ctx, &id, Answer::Accept).await
    }

    /// Declines a request sent to you; the sender is not told. Returns it
    /// DECLINED; one that is not pending for you (any more) is `NOT_FOUND`.
    async fn decline_friend_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `FriendRequest.id` to decline.")] id: ID,
    ) -> async_graphql::Result<FriendRequest> {
        answer(ctx, &id, Answer::Decline).await
    }

    /// Withdraws a request you sent. Returns it CANCELLED; one that is not
    /// pending from you (any more) is `NOT_FOUND`.
    async fn cancel_friend_request(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `FriendRequest.id` to withdraw.")] id: ID,
    ) -> async_graphql::Result<FriendRequest> {
        answer(ctx, &id, Answer::Cancel).await
    }

    /// Ends a friendship; returns the former friend. Removing someone who is
    /// not a friend changes nothing; a user who does not exist (or blocked
    /// you) is `NOT_FOUND`.
    async fn remove_friend(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `User.id` of the friend.")] user_id: ID,
    ) -> async_graphql::Result<User> {
        let viewer = ctx.require_viewer().await?;
        let other = ids::expect(&user_id, NodeKind::User)?;
        ctx.state()
            .social
            .remove_friend(viewer.user_id, other)
            .await?;
        found_user(ctx, other).await
    }

    /// Blocks a user: ends your friendship, pending requests both ways and any
    /// match between you, and hides you from them everywhere (to them you are
    /// as if you did not exist). Returns the blocked user; blocking twice
    /// changes nothing.
    async fn block_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `User.id` to block.")] user_id: ID,
    ) -> async_graphql::Result<User> {
        let viewer = ctx.require_viewer().await?;
        let other = ids::expect(&user_id, NodeKind::User)?;
        ctx.state().social.block(viewer.user_id, other).await?;
        found_user(ctx, other).await
    }

    /// Lifts your block of a user (it restores no friendship); returns them.
    async fn unblock_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `User.id` to unblock.")] user_id: ID,
    ) -> async_graphql::Result<User> {
        let viewer = ctx.require_viewer().await?;
        let other = ids::expect(&user_id, NodeKind::User)?;
        ctx.state().social.unblock(viewer.user_id, other).await?;
        found_user(ctx, other).await
    }
}

/// How the viewer answers a friend request: the recipient accepts or declines, the
/// sender cancels.
#[derive(Clone, Copy)]
enum Answer {
    Accept,
    Decline,
    Cancel,
}

async fn answer(
    ctx: &Context<'_>,
    id: &ID,
    answer: Answer,
) -> async_graphql::Result<FriendRequest> {
    let viewer = ctx.require_viewer().await?;
    let id = ids::expect(id, NodeKind::FriendRequest)?;
    let social = &ctx.state().social;
    let request = match answer {
        Answer::Accept => social.accept_request(viewer.user_id, id).await?,
        Answer::Decline => social.decline_request(viewer.user_id, id).await?,
        Answer::Cancel => social.cancel_request(viewer.user_id, id).await?,
    };
    Ok(FriendRequest(request))
}

/// The user a mutation acted on, as the viewer may see them.
async fn found_user(ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<User> {
    Ok(load_user(ctx, id)
        .await?
        .ok_or_else(|| AppError::not_found("user not found"))?)
}
