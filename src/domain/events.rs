//! What the domains announce when something changed, and to whom: the events
//! that live subscriptions report, and the topics they go out on. Carried by
//! the pub/sub hub (`infra::pubsub`) to every replica; published only after
//! the change committed.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::{
        chat::Message,
        discovery::Match,
        groups::{Invitation, JoinRequest},
        presence::Status,
        social::FriendRequest,
    },
    infra::pubsub::{self, PubSub},
};

pub use crate::infra::pubsub::Lagged;

/// The hub the domains publish to and the subscriptions listen on.
pub type Events = Arc<dyn PubSub<Event>>;

/// One topic's events as a subscriber receives them.
pub type Topic = pubsub::Topic<Event>;

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
        status: Status,
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
    /// Published to the conversation; a client forgets it after `expires_at`.
    Typing {
        conversation_id: Uuid,
        user_id: Uuid,
        typing: bool,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
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
