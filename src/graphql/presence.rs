//! Presence in GraphQL: `User.presence`, `setPresence` and the `presenceChanged`
//! subscription, which reports the viewer's friends coming and going.

use async_graphql::{Context, Enum, Object, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

use futures_util::{Stream, StreamExt, stream::SelectAll};
use uuid::Uuid;

use crate::{
    domain::presence::Status,
    graphql::{ContextExt, live, users::User},
    infra::pubsub::{Event, presence_topic, user_topic},
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

/// `User.presence`: as the viewer sees it.
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
    let events = live::stop_on_lag(feed).filter_map(move |event| {
        let (db, social) = (db.clone(), social.clone());
        // Boxed, so the stream does not carry database reads' futures while
        // it waits.
        Box::pin(async move {
            let event = match event {
                Ok(event) => event,
                Err(lagged) => return Some(Err(lagged)),
            };
            let Event::PresenceChanged {
                user_id,
                status,
                last_seen_at,
            } = &*event
            else {
                return None;
            };
            // Friends when it started, but maybe not now: an unfriending
            // or a block ends what they share.
            if !social.are_friends(viewer_id, *user_id).await.ok()? {
                return None;
            }
            let user = crate::domain::users::find(&db, *user_id).await.ok()??;
            Some(Ok(PresenceChangedEvent {
                user: User::new(user),
                presence: (*status).into(),
                last_seen_at: *last_seen_at,
            }))
        })
    });
    Ok(live::while_session_lives(ctx, viewer, events).await?)
}
