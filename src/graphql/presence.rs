//! Presence in GraphQL: `User.presence` and `lastSeenAt` (as the user's
//! `presenceVisibility` allows), `setPresence` and the `presenceChanged`
//! subscription, which reports the viewer's friends coming and going.

use async_graphql::{Context, Enum, Object, SimpleObject, Subscription, dataloader::DataLoader};
use chrono::{DateTime, Utc};
use entity::user;
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use futures_util::{Stream, StreamExt, stream::SelectAll};
use uuid::Uuid;

use crate::{
    domain::events::{Event, presence_topic, user_topic},
    domain::{
        presence::{PresenceVisibility as DomainVisibility, Reader, Status},
        social::Relationship,
    },
    error::{AppError, AppResult},
    graphql::{ContextExt, live, loaders::RelationshipLoader, users::User},
};

/// The most friends one `presenceChanged` follows.
const MAX_FOLLOWED: u64 = 1000;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum PresenceStatus {
    Online,
    Away,
    /// Online, but shown as OFFLINE to everyone else.
    Invisible,
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
    pub user: User,
    pub presence: PresenceStatus,
    /// When they went offline; null otherwise.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A presence as one viewer is told of it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shown(PresenceStatus, Option<DateTime<Utc>>);

impl Shown {
    /// What a hidden presence looks like: exactly someone offline, never seen.
    const HIDDEN: Self = Self(PresenceStatus::Offline, None);
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
        status: PresenceStatus,
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
    let state = ctx.state().clone();
    // The viewer's own topic first, so a friendship made while the friends
    // are read is still heard of.
    let mut topics = SelectAll::new();
    topics.push(state.pubsub.subscribe(&user_topic(viewer.user_id)).await);
    let friends = state
        .social
        .friends(viewer.user_id, Some(viewer.user_id), None, MAX_FOLLOWED)
        .await?;
    let friend_topics = friends
        .iter()
        .map(|friend| presence_topic(*friend))
        .collect();
    topics.extend(state.pubsub.subscribe_all(friend_topics).await);
    // With no friends (yet) the feed still stays open, like any other.
    topics.push(futures_util::stream::pending().boxed());
    let followed: HashSet<Uuid> = friends.into_iter().collect();
    // New friends are followed from the moment they are friends.
    let pubsub = state.pubsub.clone();
    let viewer_id = viewer.user_id;
    let feed =
        futures_util::stream::unfold((topics, followed), move |(mut topics, mut followed)| {
            let pubsub = pubsub.clone();
            async move {
                let next = topics.next().await?;
                if let Ok(event) = &next
                    && let Event::FriendshipStarted { user_id, friend_id } = &**event
                    && *user_id == viewer_id
                    && followed.len() < MAX_FOLLOWED as usize
                    && followed.insert(*friend_id)
                {
                    topics.push(pubsub.subscribe(&presence_topic(*friend_id)).await);
                }
                Some((next, (topics, followed)))
            }
        });
    let db = state.db.clone();
    let social = state.social.clone();
    let presence = state.presence.clone();
    // What this feed last told of each friend, so that a friend who hides
    // their presence from friends (ONLY_ME) is told of once, as OFFLINE,
    // and then never again: their comings and goings must not show as a
    // stream of OFFLINE events. Nothing told yet counts as OFFLINE.
    let told: Arc<Mutex<HashMap<Uuid, Shown>>> = Arc::default();
    let events = live::stop_on_lag(feed).filter_map(move |event| {
        let (db, social, presence, told) =
            (db.clone(), social.clone(), presence.clone(), told.clone());
        // Boxed, so the stream does not carry database reads' futures while
        // it waits.
        Box::pin(async move {
            let event = match event {
                Ok(event) => event,
                Err(lagged) => return Some(Err(lagged)),
            };
            let (user_id, change) = match &*event {
                Event::PresenceChanged {
                    user_id,
                    status,
                    last_seen_at,
                } => (*user_id, Some(Shown((*status).into(), *last_seen_at))),
                // The friend changed who sees them: what the viewer sees now.
                Event::PresenceVisibilityChanged { user_id } => (*user_id, None),
                _ => return None,
            };
            // Friends when it started, but maybe not now: an unfriending
            // or a block ends what they share.
            if !social.are_friends(viewer_id, user_id).await.ok()? {
                return None;
            }
            let user = crate::domain::users::find(&db, user_id).await.ok()??;
            let visibility = DomainVisibility::from_stored(&user.presence_visibility);
            let shown = match (visibility.shows_to(Reader::Friend), change) {
                (false, _) => Shown::HIDDEN,
                (true, Some(shown)) => shown,
                (true, None) => {
                    // As `User.presence` and `lastSeenAt` would answer.
                    let status = presence.status(user_id, Some(viewer_id)).await;
                    let seen = (status == Status::Offline)
                        .then_some(user.last_seen_at)
                        .flatten();
                    Shown(status.into(), seen)
                }
            };
            {
                let mut told = told.lock().unwrap_or_else(|p| p.into_inner());
                let before = told.get(&user_id).copied().unwrap_or(Shown::HIDDEN);
                if shown == Shown::HIDDEN && before == Shown::HIDDEN {
                    return None;
                }
                told.insert(user_id, shown);
            }
            Some(Ok(PresenceChangedEvent {
                user: User::new(user),
                presence: shown.0,
                last_seen_at: shown.1,
            }))
        })
    });
    Ok(live::while_session_lives(ctx, viewer, events).await?)
}
