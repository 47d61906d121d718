//! Conversations and messages. Owns the `conversations`,
//! `conversation_participants`, `messages` and `message_reactions` tables.
//! Who may message whom is social's policy ([`social::may_message`]), applied
//! here to how a pair stands, read by social's SQL inside chat's statements.
//!
//! - A DIRECT conversation exists once per pair and is opened by
//!   [`Chat::direct_conversation`] between users the policy allows, never across
//!   a block; the policy and blocks are checked again on every send.
//! - A GROUP conversation is opened with its group, and its participants follow
//!   the group's members: the groups domain calls [`open_group_conversation`],
//!   [`join_group_conversation`] and [`leave_group_conversation`] inside its own
//!   membership transactions.
//! - Sending bumps the conversation's `last_seq` first, which row-locks the
//!   conversation until commit: concurrent senders queue there, and each message
//!   takes the next number, so numbers are gapless. A retry with the same
//!   `clientMessageId` returns the first message and announces nothing.
//! - Events are published after commit, to the conversation's topic.
//!
//! Files:
//! - `conversations`: opening and finding conversations, their participants,
//!   and a group conversation following its group's members.
//! - `messages`: reading, editing and deleting messages.
//! - `send`: the one send path (`send/mod`); `send/write`, the one place that
//!   builds and writes a message; `send/batch`, concurrent sends written
//!   together on PostgreSQL; `send/verdict`, how a written message is judged
//!   and announced, whichever wrote it.
//! - `reactions`, `receipts` (read pointers), `typing`.
//! - `activity`: everything that happens in one conversation, live, as one
//!   participant may see it (`conversationEvents`).
//! - `feed`: the live stream of a conversation's messages, or all of a
//!   viewer's, gapless and in order (`messageAdded`).
//! - `shapes`: the conversation shapes a send keeps in memory.
//! - `outbox_events`: the events each change appends for services outside
//!   kith, in its transaction.

pub mod activity;
mod conversations;
pub mod feed;
mod messages;
mod outbox_events;
mod reactions;
mod receipts;
mod send;
mod shapes;
mod typing;

use chrono::{DateTime, SubsecRound, Utc};
use entity::{conversation, conversation_participant as participant, message};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    domain::{
        events::{Event, Events, conversation_topic},
        outbox::Outbox,
        social,
    },
    error::{AppError, AppResult},
    infra::db::Db,
};
use shapes::{Shape, Shapes};

pub use conversations::{
    Joined, join_group_conversation, leave_group_conversation, open_group_conversation,
};
pub use messages::{MAX_BODY_CHARS, Window, parse_body};
pub use reactions::{MAX_DISTINCT_REACTIONS, Reaction, parse_emoji};
pub use send::{Outgoing, SendBatches};
pub use typing::TYPING_TTL_SECS;

pub use crate::config::DirectPolicy;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Direct,
    Group,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "DIRECT",
            Self::Group => "GROUP",
        }
    }

    pub fn of(conversation: &conversation::Model) -> Self {
        if conversation.kind == "GROUP" {
            Self::Group
        } else {
            Self::Direct
        }
    }
}

/// A message as subscribers receive it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seq: i64,
    pub sender_id: Option<Uuid>,
    pub body: String,
    pub reply_to_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<message::Model> for Message {
    fn from(row: message::Model) -> Self {
        Self {
            id: row.id,
            conversation_id: row.conversation_id,
            seq: row.seq,
            sender_id: row.sender_id,
            body: row.body,
            reply_to_id: row.reply_to_id,
            created_at: row.created_at,
            edited_at: row.edited_at,
            deleted_at: row.deleted_at,
        }
    }
}

/// A conversation and the viewer's place in it.
#[derive(Clone, Debug)]
pub struct Membership {
    pub conversation: conversation::Model,
    pub participant: participant::Model,
}

impl Membership {
    /// Messages after the read pointer; the viewer's own messages move the
    /// pointer as they send, so they are never unread.
    pub fn unread(&self) -> i64 {
        Ord::max(
            self.conversation.last_seq - self.participant.last_read_seq,
            0,
        )
    }
}

#[derive(Clone)]
pub struct Chat {
    db: Db,
    pubsub: Events,
    policy: DirectPolicy,
    shapes: Shapes,
    /// On PostgreSQL: concurrent sends written together (`send::batch`).
    batches: Option<SendBatches>,
    outbox: Outbox,
}

impl Chat {
    pub fn new(db: Db, pubsub: Events, policy: DirectPolicy, outbox: Outbox) -> Self {
        Self {
            db,
            pubsub,
            policy,
            shapes: Shapes::default(),
            batches: None,
            outbox,
        }
    }

    /// Writes concurrent sends together, through `batches`' writers.
    pub fn with_send_batches(mut self, batches: SendBatches) -> Self {
        self.batches = Some(batches);
        self
    }

    fn publish(&self, conversation_id: Uuid, event: Event) {
        self.pubsub
            .publish(&conversation_topic(conversation_id), event);
    }

    /// What reaches the other side of a direct conversation (an edit, a deletion,
    /// a reaction added or taken back, a read receipt, typing) follows the
    /// policy sends follow: after an unmatch, the history stays readable but
    /// nothing new arrives.
    async fn check_may_write(&self, viewer: Uuid, membership: &Membership) -> AppResult<()> {
        match counterpart(&membership.conversation, viewer) {
            Some(other) => social::may_message(
                self.policy,
                social::read_standing(&self.db, viewer, other).await?,
            ),
            // A group's, or the other side deleted their account: nobody to
            // reach in particular.
            None => Ok(()),
        }
    }
}

/// The other user of a direct conversation, as `user` sees it; none for a
/// group's, or once the other side deleted their account.
fn counterpart(conversation: &conversation::Model, user: Uuid) -> Option<Uuid> {
    Shape::of(conversation).recipient(user)
}

/// The current time to the microsecond: what PostgreSQL stores, so activity
/// times (and the cursors made of them) compare alike on both databases.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn not_found() -> AppError {
    AppError::not_found("conversation not found")
}

fn message_not_found() -> AppError {
    AppError::not_found("message not found")
}
