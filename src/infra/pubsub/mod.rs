//! Publish/subscribe between the code that changes things and the subscriptions
//! that report them. Topics are strings (`user:<id>`, `presence:<id>`,
//! `group:<id>`, `conversation:<id>`); each has a bounded channel, so a slow
//! subscriber never slows the publisher: it falls behind, is told it lagged, and
//! its subscription ends.
//!
//! Two hubs implement the port: [`LocalPubSub`] serves one replica, and
//! [`RedisPubSub`] (with `REDIS_URL`) carries every event to the other replicas
//! too. Domain code only publishes; subscriptions only subscribe.

mod local;
mod redis_hub;

use std::sync::Arc;

use futures_util::{FutureExt, future::BoxFuture, stream::BoxStream};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use self::{local::LocalPubSub, redis_hub::RedisPubSub};
use crate::domain::{
    chat::Message,
    discovery::Match,
    groups::{Invitation, JoinRequest},
    social::FriendRequest,
};

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
    /// Published to the user's presence topic when they change who may see
    /// their presence, so their friends' feeds show what they see now.
    PresenceVisibilityChanged { user_id: Uuid },
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
    /// Published on the `cache` topic: every replica forgets its copies of
    /// these keys of the named cache.
    CacheInvalidated { cache: String, keys: Vec<Uuid> },
    /// Published to the conversation; a client forgets it after `expires_at`.
    Typing {
        conversation_id: Uuid,
        user_id: Uuid,
        typing: bool,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
}

/// A subscriber missed events: it read too slowly (this many), or the
/// connection to the other replicas dropped meanwhile ([`Lagged::UNKNOWN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lagged(pub u64);

impl Lagged {
    /// Some events, how many unknown, may have been lost.
    pub const UNKNOWN: Self = Self(0);
}

impl std::fmt::Display for Lagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("may have missed events"),
            missed => write!(f, "fell {missed} events behind"),
        }
    }
}

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

/// One topic's events as a subscriber receives them.
pub type Topic = BoxStream<'static, Result<Arc<Event>, Lagged>>;

pub trait PubSub: Send + Sync + 'static {
    /// Delivers to current subscribers, on every replica; call after the change
    /// has committed.
    fn publish(&self, topic: &str, event: Event);

    /// Starts listening to `topic`. The future completes once events published
    /// from then on, from any replica, will arrive: a subscriber that listens
    /// and then reads the database misses nothing in between.
    fn subscribe(&self, topic: &str) -> BoxFuture<'static, Topic>;

    /// [`Self::subscribe`] to many topics at once, in their order.
    fn subscribe_all(&self, topics: Vec<String>) -> BoxFuture<'static, Vec<Topic>> {
        let pending: Vec<_> = topics.iter().map(|topic| self.subscribe(topic)).collect();
        futures_util::future::join_all(pending).boxed()
    }
}
