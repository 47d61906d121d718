//! The friends feed (`presenceChanged`): the presence changes of a viewer's
//! friends, while they stay friends: up to [`MAX_FOLLOWED`] of those they had
//! when it started, and those they make while it runs. Each friend is shown as
//! their `presenceVisibility` lets a friend see them.
//!
//! Who is a friend is social's to say: the feed asks it.

use std::{
    collections::{HashMap, HashSet},
    future::ready,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use entity::user;
use futures_util::{Stream, StreamExt, stream::SelectAll};
use uuid::Uuid;

use super::{Presence, Reader, Status};
use crate::{
    domain::{
        events::{Event, Lagged, presence_topic, user_topic},
        social::Social,
        users::{self, PresenceVisibility},
    },
    error::AppResult,
};

/// The most friends one feed follows.
pub const MAX_FOLLOWED: u64 = 1000;

/// A friend's presence as the viewer is told of it.
pub struct FriendPresence {
    pub user: user::Model,
    pub status: Status,
    /// When they went offline; `None` otherwise.
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A presence as one viewer is told of it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Shown(Status, Option<DateTime<Utc>>);

impl Shown {
    /// What a hidden presence looks like: exactly someone offline, never seen.
    const HIDDEN: Self = Self(Status::Offline, None);
}

impl Presence {
    /// The viewer's friends feed. A feed that missed events says so once
    /// ([`Lagged`]) and ends.
    pub async fn friends_feed(
        &self,
        viewer: Uuid,
        social: Social,
    ) -> AppResult<impl Stream<Item = Result<FriendPresence, Lagged>> + Send + 'static + use<>>
    {
        // The viewer's own topic first, so a friendship made while the friends
        // are read is still heard of.
        let mut topics = SelectAll::new();
        topics.push(self.pubsub.subscribe(&user_topic(viewer)).await);
        let friends = social
            .friends(viewer, Some(viewer), None, MAX_FOLLOWED)
            .await?;
        let friend_topics = friends
            .iter()
            .map(|friend| presence_topic(*friend))
            .collect();
        topics.extend(self.pubsub.subscribe_all(friend_topics).await);
        // With no friends (yet) the feed still stays open, like any other.
        topics.push(futures_util::stream::pending().boxed());
        let followed: HashSet<Uuid> = friends.into_iter().collect();
        // New friends are followed from the moment they are friends.
        let pubsub = self.pubsub.clone();
        let feed =
            futures_util::stream::unfold((topics, followed), move |(mut topics, mut followed)| {
                let pubsub = pubsub.clone();
                async move {
                    let next = topics.next().await?;
                    if let Ok(event) = &next
                        && let Event::FriendshipStarted { user_id, friend_id } = &**event
                        && *user_id == viewer
                        && followed.len() < MAX_FOLLOWED as usize
                        && followed.insert(*friend_id)
                    {
                        topics.push(pubsub.subscribe(&presence_topic(*friend_id)).await);
                    }
                    Some((next, (topics, followed)))
                }
            });
        // Passes events through; after a lag, says so and ends.
        let feed = feed.scan(false, |lagged, event| {
            if *lagged {
                return ready(None);
            }
            *lagged = event.is_err();
            ready(Some(event))
        });
        let presence = self.clone();
        // What this feed last told of each friend, so that a friend who hides
        // their presence from friends (ONLY_ME) is told of once, as OFFLINE,
        // and then never again: their comings and goings must not show as a
        // stream of OFFLINE events. Nothing told yet counts as OFFLINE.
        let told: Arc<Mutex<HashMap<Uuid, Shown>>> = Arc::default();
        Ok(feed.filter_map(move |event| {
            let (presence, social, told) = (presence.clone(), social.clone(), told.clone());
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
                    } => (*user_id, Some(Shown(*status, *last_seen_at))),
                    // The friend changed who sees them: what the viewer sees now.
                    Event::PresenceVisibilityChanged { user_id } => (*user_id, None),
                    _ => return None,
                };
                // Friends when it started, but maybe not now: an unfriending
                // or a block ends what they share.
                if !social.are_friends(viewer, user_id).await.ok()? {
                    return None;
                }
                let user = users::find(&presence.db, user_id).await.ok()??;
                let visibility = PresenceVisibility::from_stored(&user.presence_visibility);
                let shown = match (visibility.shows_to(Reader::Friend), change) {
                    (false, _) => Shown::HIDDEN,
                    (true, Some(shown)) => shown,
                    (true, None) => {
                        // As `User.presence` and `lastSeenAt` would answer.
                        let status = presence.status(user_id, Some(viewer)).await;
                        let seen = (status == Status::Offline)
                            .then_some(user.last_seen_at)
                            .flatten();
                        Shown(status, seen)
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
                Some(Ok(FriendPresence {
                    user,
                    status: shown.0,
                    last_seen_at: shown.1,
                }))
            })
        }))
    }
}
