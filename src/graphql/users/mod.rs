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
        media::{self, Photo},
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

/// A user's gender, as they give it on their profile; discovery matches on it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    /// Female (a woman).
    Female,
    /// Male (a man).
    Male,
    /// Neither exclusively a woman nor a man.
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
    /// Degrees north (negative: south), -90 to 90.
    pub latitude: f64,
    /// Degrees east (negative: west), -180 to 180.
    pub longitude: f64,
}

/// A position in WGS 84 degrees, for discovery's distances. Others never see
/// it: they see whole kilometres to a coarse cell around it.
#[derive(InputObject)]
pub struct LocationInput {
    /// Degrees north (negative: south), -90 to 90; else `BAD_USER_INPUT`.
    pub latitude: f64,
    /// Degrees east (negative: west), -180 to 180; else `BAD_USER_INPUT`.
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

/// A person with an account. Anyone (signed in or not) sees the public
/// profile; the fields marked "owner only" are null to everyone but the user
/// themself. A user who blocked the viewer is not found at all.
#[Object]
impl User {
    /// The user's global ID (for `node`, `user` and the mutations that take
    /// a `userId`).
    pub async fn id(&self) -> ID {
        ids::encode(NodeKind::User, self.0.id)
    }

    /// Unique, lower-case, 3 to 32 of `a-z 0-9 _ .`.
    async fn username(&self) -> &str {
        &self.0.username
    }

    /// The name they show, at most 64 characters; null when they set none.
    async fn display_name(&self) -> Option<&str> {
        self.0.display_name.as_deref()
    }

    /// Their free text about themselves, at most 500 characters (line breaks
    /// kept); null when they wrote none.
    async fn bio(&self) -> Option<&str> {
        self.0.bio.as_deref()
    }

    /// Whole years, from the birthdate (which only the owner sees); null
    /// when they gave none.
    async fn age(&self) -> Option<i32> {
        self.0
            .birthdate
            .map(|birthdate| users::age_on(birthdate, Utc::now().date_naive()))
    }

    /// Null when they gave none.
    async fn gender(&self) -> Option<Gender> {
        self.0
            .gender
            .as_deref()
            .and_then(DomainGender::from_stored)
            .map(Gender::from)
    }

    /// Lower-case tags, at most 20 of at most 32 characters each; empty when
    /// they gave none.
    async fn interests(&self) -> Vec<String> {
        users::interests_of(&self.0.interests)
    }

    /// Their photos in the order they chose (the first is the profile
    /// picture), at most `KITH_PHOTOS_PER_USER`. Shown to signed-in users
    /// who are not blocked by them and did not block them (an empty list
    /// otherwise); a photo moderation hid only its owner sees.
    #[graphql(
        complexity = "crate::graphql::pagination::list_cost(media::PHOTOS_COST, child_complexity)"
    )]
    async fn photos(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Photo>> {
        let viewer = if self.1 == Audience::Owner {
            Some(self.0.id)
        } else {
            ctx.viewer().await?.map(|viewer| viewer.user_id)
        };
        Ok(media::photos_of(ctx, self.0.id, viewer).await?)
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

    /// Who may see their presence and lastSeenAt. Owner only: null to
    /// everyone else.
    async fn presence_visibility(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<PresenceVisibility>> {
        let visibility = DomainPresenceVisibility::from_stored(&self.0.presence_visibility);
        Ok(self.viewer_is_owner(ctx).await?.then(|| visibility.into()))
    }

    /// When the account was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The address they sign in with, lower-case. Owner only: null to
    /// everyone else, and when they gave none.
    async fn email(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then_some(self.0.email.as_deref())
            .flatten())
    }

    /// The E.164 number they sign in with. Owner only: null to everyone
    /// else, and when they gave none.
    async fn phone(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<&str>> {
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then_some(self.0.phone.as_deref())
            .flatten())
    }

    /// Owner only: null to everyone else (who see `age`), and when they gave
    /// none.
    async fn birthdate(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Date>> {
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then_some(self.0.birthdate.map(Date))
            .flatten())
    }

    /// Whom they want recommended. Owner only: null to everyone else.
    async fn discovery_preferences(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<discovery::DiscoveryPreferences>> {
        Ok(self
            .viewer_is_owner(ctx)
            .await?
            .then(|| discovery::preferences_of(&self.0)))
    }

    /// Their exact position. Owner only: null to everyone else, and when
    /// they set none.
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

    /// The user's friends (page with `first`, at most 100, and `after`); null
    /// when their `friendListVisibility` hides the list from the viewer.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn friends(
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
    ) -> async_graphql::Result<Option<UserConnection>> {
        Ok(social::friends(ctx, &self.0, first, after).await?)
    }

    /// How many friends they have, whoever may see the list itself.
    async fn friends_count(&self) -> i64 {
        self.0.friend_count
    }

    /// Friends the viewer and this user share (page with `first`, at most 100,
    /// and `after`); null when signed out or on your own profile.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn mutual_friends(
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

    /// Who may see their friend list. Owner only: null to everyone else.
    async fn friend_list_visibility(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<FriendListVisibility>> {
        let visibility = DomainVisibility::from_stored(&self.0.friend_list_visibility);
        Ok(self.viewer_is_owner(ctx).await?.then(|| visibility.into()))
    }

    /// Pending requests others sent this user, newest first. Owner only: null
    /// to everyone else.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn incoming_friend_requests(
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
    ) -> async_graphql::Result<Option<FriendRequestConnection>> {
        Ok(social::friend_requests(ctx, self.0.id, true, first, after).await?)
    }

    /// Pending requests this user sent, newest first. Owner only: null to
    /// everyone else.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn outgoing_friend_requests(
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
    ) -> async_graphql::Result<Option<FriendRequestConnection>> {
        Ok(social::friend_requests(ctx, self.0.id, false, first, after).await?)
    }

    /// The users this user blocked. Owner only: null to everyone else.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn blocked_users(
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
    ) -> async_graphql::Result<Option<UserConnection>> {
        Ok(social::blocked_users(ctx, self.0.id, first, after).await?)
    }

    /// The groups the user belongs to, in the order they joined: all of them to
    /// their owner; to others the public ones and the private ones they share.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn groups(
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
    ) -> async_graphql::Result<GroupConnection> {
        Ok(groups::groups_of_user(ctx, self.0.id, first, after).await?)
    }

    /// Pending invitations to groups, newest first. Owner only: null to
    /// everyone else.
    #[graphql(complexity = "crate::graphql::pagination::cost(first, child_complexity)")]
    async fn group_invitations(
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
        Ok(groups::invitations_of_user(ctx, self.0.id, first, after).await?)
    }

    /// The account's signed-in sessions, most recently used first (the 100
    /// most recent). Owner only: null to everyone else.
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

    /// The ways the account signs in: its password, if it has one, then
    /// its linked identities, oldest first. Owner only: null to everyone
    /// else.
    async fn identities(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<crate::graphql::sign_in::Identity>>> {
        // An `AuthPayload`'s user included: its request carried no token yet.
        if !self.viewer_is_owner(ctx).await? {
            return Ok(None);
        }
        let methods = ctx.state().accounts.sign_in_methods(self.0.id).await?;
        Ok(Some(crate::graphql::sign_in::identities(methods)))
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
