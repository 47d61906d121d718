//! Publish/subscribe between the code that changes things and the subscriptions
//! that report them. Topics are strings (`user:<id>`, `presence:<id>`, `group:<id>`, `conversation:<id>`); each has a bounded broadcast
//! channel, so a slow subscriber never slows the publisher: it falls behind, is told
//! it lagged, and its subscription ends. The in-process hub serves one replica; the
//! trait is what a Redis-backed hub implements for many.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures_util::{Stream, StreamExt, stream::BoxStream};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::{
    chat::Message,
    discovery::Match,
    groups::{Invitation, JoinRequest},
    social::FriendRequest,
};

/// Messages a topic's subscribers may fall behind by before they are cut off:
/// a conversation's or group's topic carries a chat's pace; a user's or their
/// presence's, a few events a minute. The buffer is allocated whole per topic
/// (about 48 bytes a slot), and every signed-in subscriber has a user topic of
/// their own, so a small one there saves most of a socket's memory.
const TOPIC_BUFFER: usize = 256;
const PERSONAL_TOPIC_BUFFER: usize = 32;

fn buffer_for(topic: &str) -> usize {
    if topic.starts_with("user:") || topic.starts_with("presence:") {
        PERSONAL_TOPIC_BUFFER
    } else {
        TOPIC_BUFFER
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Someone signed in to the account: other devices may want to say so.
    SignedIn { user_id: Uuid, session_id: Uuid },
    /// Sessions ended: their subscriptions end too. `None` means all of them.
    SessionsRevoked {
        user_id: Uuid,
        session_ids: Option<Vec<Uuid>>,
    },
    /// Published to the recipient.
    FriendRequestReceived { request: FriendRequest },
    /// Published to the request's sender.
    FriendRequestAccepted { request: FriendRequest },
    /// Published to each of two new friends, naming the other.
    FriendshipStarted { user_id: Uuid, friend_id: Uuid },
    /// Published to both users: whatever they shared live must stop.
    Blocked { blocker: Uuid, blocked: Uuid },
    /// Published to the invitee.
    GroupInvitationReceived { invitation: Invitation },
    /// Published to the group's owner and admins.
    GroupJoinRequestReceived { request: JoinRequest },
    /// Published to the requester.
    GroupJoinRequestApproved { request: JoinRequest },
    /// Published to the group and to the user who left or was removed: what they
    /// received from the group live must stop.
    GroupMembershipEnded { group_id: Uuid, user_id: Uuid },
    /// Published to the group.
    GroupDeleted { group_id: Uuid },
    /// Published to both users of a new match.
    MatchCreated { matched: Match },
    /// Published to both users of a match that ended.
    MatchEnded { match_id: Uuid, user_id: Uuid },
    /// Published to the user: they take part in a conversation now, from
    /// (after) `from_seq`.
    ConversationJoined {
        conversation_id: Uuid,
        user_id: Uuid,
        from_seq: i64,
    },
    /// Published to the user's presence topic, with what everyone else sees
    /// (INVISIBLE shows as OFFLINE); `last_seen_at` when they went offline.
    PresenceChanged {
        user_id: Uuid,
        status: crate::domain::presence::Status,
        last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Published to the conversation.
    MessageAdded { message: Message },
    /// Published to the conversation.
    MessageEdited { message: Message },
    /// Published to the conversation: the message is a tombstone now.
    MessageDeleted { message: Message },
    /// Published to the conversation: `user_id` reacted with `emoji`, or took
    /// their reaction back (`None`).
    ReactionChanged {
        conversation_id: Uuid,
        message_id: Uuid,
        user_id: Uuid,
        emoji: Option<String>,
    },
    /// Published to the conversation: `user_id` has read up to `up_to_seq`.
    ReadReceipt {
        conversation_id: Uuid,
        user_id: Uuid,
        up_to_seq: i64,
    },
    /// Published to the conversation; a client forgets it after `expires_at`.
    Typing {
        conversation_id: Uuid,
        user_id: Uuid,
        typing: bool,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
}

/// A subscriber missed events because it read too slowly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lagged(pub u64);

pub fn user_topic(user_id: Uuid) -> String {
    format!("user:{user_id}")
}

pub fn group_topic(group_id: Uuid) -> String {
    format!("group:{group_id}")
}

pub fn presence_topic(user_id: Uuid) -> String {
    format!("presence:{user_id}")
}

pub fn conversation_topic(conversation_id: Uuid) -> String {
    format!("conversation:{conversation_id}")
}

pub trait PubSub: Send + Sync + 'static {
    /// Delivers to current subscribers; call after the change has committed.
    fn publish(&self, topic: &str, event: Event);
    fn subscribe(&self, topic: &str) -> BoxStream<'static, Result<Arc<Event>, Lagged>>;
}

#[derive(Default)]
pub struct LocalPubSub {
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<Event>>>>>,
}

impl PubSub for LocalPubSub {
    fn publish(&self, topic: &str, event: Event) {
        let topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = topics.get(topic) {
            // An error only means nobody is listening right now.
            let _ = sender.send(Arc::new(event));
        }
    }

    fn subscribe(&self, topic: &str) -> BoxStream<'static, Result<Arc<Event>, Lagged>> {
        let receiver = {
            let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            topics
                .entry(topic.to_owned())
                .or_insert_with(|| broadcast::channel(buffer_for(topic)).0)
                .subscribe()
        };
        let guard = TopicReceiver {
            receiver,
            topic: topic.to_owned(),
            topics: self.topics.clone(),
        };
        receive(guard).boxed()
    }
}

/// Removes the topic's channel when its last subscriber goes away.
struct TopicReceiver {
    receiver: broadcast::Receiver<Arc<Event>>,
    topic: String,
    topics: Arc<Mutex<HashMap<String, broadcast::Sender<Arc<Event>>>>>,
}

impl Drop for TopicReceiver {
    fn drop(&mut self) {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        if topics
            .get(&self.topic)
            .is_some_and(|sender| sender.receiver_count() <= 1)
        {
            topics.remove(&self.topic);
        }
    }
}

/// Events until the channel closes; a lag is reported once and ends the stream.
fn receive(guard: TopicReceiver) -> impl Stream<Item = Result<Arc<Event>, Lagged>> {
    futures_util::stream::unfold(Some(guard), |state| async move {
        let mut guard = state?;
        match guard.receiver.recv().await {
            Ok(event) => Some((Ok(event), Some(guard))),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some((Err(Lagged(missed)), None)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_events_and_topics_are_dropped_with_them() {
        let hub = LocalPubSub::default();
        let user_id = Uuid::now_v7();
        let mut first = hub.subscribe("t");
        let event = Event::SignedIn {
            user_id,
            session_id: user_id,
        };
        hub.publish("t", event.clone());
        assert_eq!(*first.next().await.unwrap().unwrap(), event);
        drop(first);
        assert!(hub.topics.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_and_cut_off() {
        let hub = LocalPubSub::default();
        let mut slow = hub.subscribe("t");
        let user_id = Uuid::now_v7();
        for _ in 0..TOPIC_BUFFER + 5 {
            hub.publish(
                "t",
                Event::SignedIn {
                    user_id,
                    session_id: user_id,
                },
            );
        }
        assert_eq!(slow.next().await.unwrap().unwrap_err(), Lagged(5));
        assert!(slow.next().await.is_none());
    }
}
