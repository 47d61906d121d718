//! Presence in GraphQL: `User.presence` and `lastSeenAt` (as the user's
//! `presenceVisibility` allows), `setPresence` and the `presenceChanged`
//! subscription, which reports the viewer's friends coming and going.

use async_graphql::{Context, Enum, Object, SimpleObject, Subscription, dataloader::DataLoader};
use chrono::{DateTime, Utc};
use entity::user;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::{
    domain::{
        presence::{PresenceVisibility as DomainVisibility, Reader, Status},
        social::Relationship,
    },
    error::{AppError, AppResult},
    graphql::{ContextExt, live, loaders::RelationshipLoader, users::User},
};

/// Whether a user is around, as a viewer sees it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PresenceStatus {
    /// Connected (an open WebSocket) and not set otherwise.
    Online,
    /// Connected, but set away by the user.
    Away,
    /// Online, but shown as OFFLINE to everyone else.
    Invisible,
    /// Not connected (or hidden from the viewer).
    Offline,
}

impl From<Status> for PresenceStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Online => Self::Online,
            Status::Away => Self::Away,
            Status::Invisible => Self::Invisible,
            Status::Offline => Self::Offline,
        }
    }
}

impl From<PresenceStatus> for Status {
    fn from(status: PresenceStatus) -> Self {
        match status {
            PresenceStatus::Online => Self::Online,
            PresenceStatus::Away => Self::Away,
            PresenceStatus::Invisible => Self::Invisible,
            PresenceStatus::Offline => Self::Offline,
        }
    }
}

/// Who may see your presence and when you were last seen.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PresenceVisibility {
    /// Every signed-in user.
    Everyone,
    /// Your friends (the default).
    Friends,
    /// Nobody but you.
    OnlyMe,
}

impl From<PresenceVisibility> for DomainVisibility {
    fn from(value: PresenceVisibility) -> Self {
        match value {
            PresenceVisibility::Everyone => Self::Everyone,
            PresenceVisibility::Friends => Self::Friends,
            PresenceVisibility::OnlyMe => Self::OnlyMe,
        }
    }
}

impl From<DomainVisibility> for PresenceVisibility {
    fn from(value: DomainVisibility) -> Self {
        match value {
            DomainVisibility::Everyone => Self::Everyone,
            DomainVisibility::Friends => Self::Friends,
            DomainVisibility::OnlyMe => Self::OnlyMe,
        }
    }
}

/// Whether the request's viewer may see `owner`'s presence and `lastSeenAt`
/// (`owner_is_viewer` when that is known without asking the request). In a
/// list, the relationships are read in one batch.
pub async fn may_see_presence(
    ctx: &Context<'_>,
    owner: &user::Model,
    owner_is_viewer: bool,
) -> AppResult<bool> {
    let visibility = DomainVisibility::from_stored(&owner.presence_visibility);
    let reader = match ctx.viewer().await? {
        _ if owner_is_viewer => Reader::Myself,
        None => Reader::SignedOut,
        Some(viewer) if viewer.user_id == owner.id => Reader::Myself,
        // Nothing to look up: no relationship would show it.
        Some(_) if visibility == DomainVisibility::OnlyMe => Reader::Other,
        Some(_) if visibility == DomainVisibility::Everyone => Reader::Other,
        Some(viewer) => {
            let loader = ctx.data_unchecked::<DataLoader<RelationshipLoader>>();
            let relationship =
                loader
                    .load_one((viewer.user_id, owner.id))
                    .await
                    .map_err(|err| {
                        AppError::Internal(anyhow::anyhow!("loading a relationship: {err}"))
                    })?;
            match relationship {
                Some(Relationship::Friends) => Reader::Friend,
                _ => Reader::Other,
            }
        }
    };
    Ok(visibility.shows_to(reader))
}

/// `User.presence`: as the viewer sees it, once [`may_see_presence`] allows.
pub async fn presence_of(
    ctx: &Context<'_>,
    user_id: Uuid,
) -> async_graphql::Result<PresenceStatus> {
    let viewer = ctx.viewer().await?.map(|v| v.user_id);
    Ok(ctx.state().presence.status(user_id, viewer).await.into())
}

/// A friend's presence changed.
#[derive(SimpleObject)]
pub struct PresenceChangedEvent {
    /// The friend.
    pub user: User,
    /// Their presence now, as the viewer sees it.
    pub presence: PresenceStatus,
    /// When they went offline; null otherwise.
    pub last_seen_at: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct PresenceMutation;

#[Object]
impl PresenceMutation {
    /// What others see of you while you are connected: AWAY, INVISIBLE (shown
    /// as OFFLINE to others), OFFLINE (until your next connection), or ONLINE
    /// again. Returns your status as you see it.
    async fn set_presence(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The status to show.")] status: PresenceStatus,
    ) -> async_graphql::Result<PresenceStatus> {
        let viewer = ctx.require_viewer().await?;
        Ok(ctx
            .state()
            .presence
            .set(viewer.user_id, status.into())
            .await
            .into())
    }
}

#[derive(Default)]
pub struct PresenceSubscription;

#[Subscription]
impl PresenceSubscription {
    /// Presence changes of the viewer's friends, while they stay friends: up to
    /// 1,000 of those they had when it started, and those they make while it
    /// runs.
    async fn presence_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<
        impl Stream<Item = async_graphql::Result<PresenceChangedEvent>> + use<>,
    > {
        // Boxed, for memory: see "Boxed setup" in `live`.
        Box::pin(open_presence_changed(ctx)).await
    }
}

async fn open_presence_changed(
    ctx: &Context<'_>,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<PresenceChangedEvent>> + use<>>
{
    let viewer = ctx.require_viewer().await?;
    let state = ctx.state();
    let feed = state
        .presence
        .friends_feed(viewer.user_id, state.social.clone())
        .await?;
    let events = feed.map(|told| {
        told.map(|friend| PresenceChangedEvent {
            user: User::new(friend.user),
            presence: friend.status.into(),
            last_seen_at: friend.last_seen_at,
        })
        .map_err(live::lag_error)
    });
    Ok(live::while_session_lives(ctx, viewer, events).await?)
}
