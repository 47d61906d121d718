//! Users in GraphQL: the `User` type, lookups, search and profile updates.
//!
//! Files: this one (the `User` type and how a user is loaded), `lookup` (the
//! user queries: me, by id, by username, search), `profile_update`
//! (`updateProfile`).

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject, dataloader::DataLoader};
use chrono::{DateTime, Utc};
use entity::user;
use uuid::Uuid;

use crate::{
    domain::users::{
        self, FriendListVisibility as DomainVisibility, Gender as DomainGender,
        PresenceVisibility as DomainPresenceVisibility,
    },
    error::{AppError, AppResult},
    graphql::{
        ContextExt,
        accounts::Session,
        discovery,
        groups::{self, GroupConnection, GroupInvitationConnection},
        ids::{self, NodeKind},
        loaders::UserLoader,
        presence::{self, PresenceStatus, PresenceVisibility},
        scalars::Date,
        social::{
            self, FriendListVisibility, FriendRequestConnection, Relationship, UserConnection,
        },
    },
};

mod lookup;
mod profile_update;

pub use lookup::UserQuery;
pub use profile_update::UserMutation;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Female,
    Male,
    Nonbinary,
}

impl From<Gender> for DomainGender {
    fn from(gender: Gender) -> Self {
        match gender {
            Gender::Female => Self::Female,
            Gender::Male => Self::Male,
            Gender::Nonbinary => Self::Nonbinary,
        }
    }
}

impl From<DomainGender> for Gender {
    fn from(gender: DomainGender) -> Self {
        match gender {
            DomainGender::Female => Self::Female,
            DomainGender::Male => Self::Male,
            DomainGender::Nonbinary => Self::Nonbinary,
        }
    }
}

/// An exact position; only its owner sees it.
#[derive(SimpleObject, Clone, Copy)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(InputObject)]
pub struct LocationInput {
    pub latitude: f64,
    pub longitude: f64,
}

pub struct User(pub user::Model, Audience);

/// Who the object is being shown to, when that is known without asking the request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// Whoever the request's viewer is.
    Viewer,
    /// The account's owner, who just signed in with this very response.
    Owner,
}

impl User {
    pub fn new(model: user::Model) -> Self {
        Self(model, Audience::Viewer)
    }

    /// The user as shown to its owner: an `AuthPayload`'s user, whose request
    /// carried no token yet.
    pub fn for_owner(model: user::Model) -> Self {
        Self(model, Audience::Owner)
    }

    async fn may_see_presence(&self, ctx: &Context<'_>) -> AppResult<bool> {
        presence::may_see_presence(ctx, &self.0, self.1 == Audience::Owner).await
    }

    /// Owner-only fields answer null to everyone else.
    async fn viewer_is_owner(&self, ctx: &Context<'_>) -> AppResult<bool> {
        if self.1 == Audience::Owner {
            return Ok(true);
        }
        Ok(ctx.viewer().await?.is_some_and(|v| v.user_id == self.0.id))
    }
}

#[Object]
impl User {
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::User, self.0.id)
    }

    async fn username(&self) -> &str {
        &self.0.username
    }

    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }

    async fn bio(&self) -> Option<&str> {
        self.0.bio.as_deref()
    }

    /// Whole years, from the birthdate (which only the owner sees).
    async fn age(&self) -> Option<i32> {
        self.0
            .birthdate
            .map(|birthdate| users::age_on(birthdate, Utc::now().date_naive()))
    }

    async fn gender(&self) -> Option<Gender> {
        self.0
            .gender
            .as_deref()
            .and_then(DomainGender::from_stored)
            .map(Gender::from)
    }

    /// Lower-case tags, at most 20.
    async fn interests(&self) -> Vec<String> {
        users::interests_of(&self.0.interests)
    }

    /// ONLINE while they have an open connection, OFFLINE a short while after
    /// the last one closes; AWAY or INVISIBLE (OFFLINE to others) by choice.
    /// OFFLINE to whoever their presenceVisibility leaves out, and to
    /// signed-out readers.
    async fn presence(&self, ctx: &Context<'_>) -> async_graphql::Result<PresenceStatus> {
        if !self.may_see_presence(ctx).await? {
            return Ok(PresenceStatus::Offline);
        }
        presence::presence_of(ctx, self.0.id).await
    }

    /// When they were last online (kept when they go offline; not while
    /// invisible). Null to whoever their presenceVisibility leaves out, and
    /// to signed-out readers.
    async fn last_seen_at(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self
            .may_see_presence(ctx)
            .await?
            .then_some(self.0.last_seen_at)
            .flatten())
    }

    /// Who may see presence and lastSeenAt. Owner only.
    async fn presence_visibility(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<PresenceVisibility>> {
        let visibility = DomainPresenceVisibility::from_stored(&self.0.presence_visibility);
        Ok(self.viewer_is_owner(ctx).await?.then(|| visibility.into()))
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Owner only.
    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then_some(self.0.email.as_deref())
            .flatten())
    }

    /// Owner only.
    async fn phone(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then_some(self.0.phone.as_deref())
            .flatten())
    }

    /// Owner only.
    async fn birthdate(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Date>> {
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then_some(self.0.birthdate.map(Date))
            .flatten())
    }

    /// Owner only.
    async fn discovery_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<discovery::DiscoveryPreferences>> {
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then(|| discovery::preferences_of(&self.0)))
    }

    /// Owner only.
    async fn location(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Location>> {
        let location = match (self.0.latitude, self.0.longitude) {
            (Some(latitude), Some(longitude)) => Some(Location {
                latitude,
                longitude,
            }),
            _ => None,
        };
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then_some(location)
            .flatten())
    }

    /// The user's friends; null when their friend-list setting hides it from the viewer.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn friends(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<UserConnection>> {
        Ok(social::friends(ctx, &self.0, first, after).await?)
    }

    async fn friends_count(&self) -> i64 {
        self.0.friend_count
    }

    /// Friends the viewer and this user share; null when signed out or on your own profile.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn mutual_friends(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<UserConnection>> {
        Ok(social::mutual_friends(ctx, self.0.id, first, after).await?)
    }

    /// How the viewer stands to this user; null when signed out.
    async fn viewer_relationship(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Relationship>> {
        Ok(social::viewer_relationship(ctx, self.0.id).await?)
    }

    /// Who may see the friend list. Owner only.
    async fn friend_list_visibility(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<FriendListVisibility>> {
        let visibility = DomainVisibility::from_stored(&self.0.friend_list_visibility);
        Ok(self.viewer_is_owner(ctx).await?.then(|| visibility.into()))
    }

    /// Pending requests others sent this user, newest first. Owner only.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn incoming_friend_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<FriendRequestConnection>> {
        Ok(social::friend_requests(ctx, self.0.id, true, first, after).await?)
    }

    /// Pending requests this user sent, newest first. Owner only.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn outgoing_friend_requests(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<FriendRequestConnection>> {
        Ok(social::friend_requests(ctx, self.0.id, false, first, after).await?)
    }

    /// The users this user blocked. Owner only.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn blocked_users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<UserConnection>> {
        Ok(social::blocked_users(ctx, self.0.id, first, after).await?)
    }

    /// The groups the user belongs to, in the order they joined: all of them to
    /// their owner; to others the public ones and the private ones they share.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<GroupConnection> {
        Ok(groups::groups_of_user(ctx, self.0.id, first, after).await?)
    }

    /// Pending invitations to groups, newest first. Owner only.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn group_invitations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Option<GroupInvitationConnection>> {
        Ok(groups::invitations_of_user(ctx, self.0.id, first, after).await?)
    }

    /// The account's signed-in sessions, most recently used first (the 100
    /// most recent). Owner only.
    #[graphql(
        complexity = "crate::graphql::pagination::list_cost(crate::domain::accounts::SESSIONS_LISTED as usize, child_complexity)"
    )]
    async fn sessions(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Vec<Session>>> {
        let Some(viewer) = ctx.viewer().await?.filter(|v| v.user_id == self.0.id) else {
            return Ok(None);
        };
        let sessions = ctx.state().accounts.sessions(viewer.user_id).await?;
        Ok(Some(
            sessions
                .into_iter()
                .map(|model| Session {
                    current: model.id == viewer.session_id,
                    model,
                })
                .collect(),
        ))
    }
}

/// A user by id through the request's loader; `None` when there is none or they
/// blocked the viewer.
pub async fn load_user(ctx: &Context<'_>, id: Uuid) -> AppResult<Option<User>> {
    let loader = ctx.data_unchecked::<DataLoader<UserLoader>>();
    let found = loader
        .load_one(id)
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!("loading a user: {err}")))?;
    visible(ctx, found).await
}

/// The user, unless they blocked the viewer: then they are as absent as a user
/// who does not exist.
async fn visible(ctx: &Context<'_>, found: Option<user::Model>) -> AppResult<Option<User>> {
    let Some(found) = found else {
        return Ok(None);
    };
    if let Some(viewer) = ctx.viewer().await?
        && viewer.user_id != found.id
        && ctx
            .state()
            .social
            .hides_from(found.id, viewer.user_id)
            .await?
    {
        return Ok(None);
    }
    Ok(Some(User::new(found)))
}
