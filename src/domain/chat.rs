//! Conversations and messages. Owns the `conversations`,
//! `conversation_participants` and `messages` tables, and the one policy of who
//! may message whom ([`DirectPolicy`]).
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
//!   takes the next number, so numbers are gapless (the writing half, one
//!   statement on PostgreSQL, is `chat_send`). A retry with the same
//!   `clientMessageId` returns the first message and announces nothing.
//! - On PostgreSQL concurrent sends are written together, one transaction per
//!   batch (`chat_batch`); whatever a batch cannot write as it would alone is
//!   written alone, here.
//! - Events are published after commit, to the conversation's topic.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use entity::{conversation, conversation_participant as participant, message, message_reaction};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sea_query::{Expr, ExprTrait},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::db::Db;
use crate::{
    domain::events::{Event, Events, conversation_topic, user_topic},
    domain::{
        chat_batch::{self, Batched, SendBatches},
        chat_send,
        chat_shapes::{Shape, Shapes},
        groups, social,
    },
    error::{AppError, AppResult, is_unique_violation},
};

pub const MAX_BODY_CHARS: usize = 4000;
const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 64;
/// An emoji may be a sequence (flags, skin tones, families), but not a sentence.
const MAX_EMOJI_CHARS: usize = 10;
/// Different emoji on one message.
pub const MAX_DISTINCT_REACTIONS: usize = 20;
/// How long a typing indicator holds unless renewed.
pub const TYPING_TTL_SECS: i64 = 6;

/// One emoji on a message: how many reacted with it, and whether the viewer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    pub viewer_reacted: bool,
}

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

/// A message to send, as the client gave it.
pub struct Outgoing {
    pub conversation_id: Uuid,
    pub body: String,
    pub client_message_id: String,
    pub reply_to_id: Option<Uuid>,
}

/// Which messages of a conversation, by seq.
#[derive(Clone, Copy, Debug)]
pub enum Window {
    /// The first `limit` after `seq` (0 for the start), oldest first.
    After { seq: i64, limit: u64 },
    /// The last `limit` before `seq` (`None` for the end), returned oldest first.
    Before { seq: Option<i64>, limit: u64 },
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
    /// On PostgreSQL: concurrent sends written together (`chat_batch`).
    batches: Option<SendBatches>,
}

impl Chat {
    pub fn new(db: Db, pubsub: Events, policy: DirectPolicy) -> Self {
        Self {
            db,
            pubsub,
            policy,
            shapes: Shapes::default(),
            batches: None,
        }
    }

    /// Writes concurrent sends together, through `batches`' writers.
    pub fn with_send_batches(mut self, batches: SendBatches) -> Self {
        self.batches = Some(batches);
        self
    }

    /// The direct conversation between the viewer and `other`, opened if it is
    /// not yet: `FORBIDDEN` when the policy does not let them message.
    pub async fn direct_conversation(&self, viewer: Uuid, other: Uuid) -> AppResult<Membership> {
        if viewer == other {
            return Err(AppError::bad_input("userId", "you cannot message yourself"));
        }
        self.check_may_message(&self.db, viewer, other).await?;
        let (low, high) = social::ordered(viewer, other);
        if let Some(found) = self.find_direct(low, high).await? {
            return self
                .membership(viewer, found.id)
                .await?
                .ok_or_else(not_found);
        }
        let now = now();
        let txn = self.db.begin().await?;
        let id = Uuid::now_v7();
        let inserted = conversation::Entity::insert(conversation::ActiveModel {
            id: Set(id),
            kind: Set(Kind::Direct.as_str().to_owned()),
            group_id: Set(None),
            direct_low: Set(Some(low)),
            direct_high: Set(Some(high)),
            last_seq: Set(0),
            last_activity_at: Set(now),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await;
        match inserted {
            Ok(_) => {
                for user in [low, high] {
                    add_participant(&txn, id, user, 0, now).await?;
                }
                txn.commit().await?;
                for user in [low, high] {
                    let joined = Joined {
                        conversation_id: id,
                        from_seq: 0,
                    };
                    self.pubsub.publish(&user_topic(user), joined.event(user));
                }
            }
            // Both opened it at once: the other one stands.
            Err(err) if is_unique_violation(&err) => drop(txn),
            Err(err) => return Err(err.into()),
        }
        let found = self.find_direct(low, high).await?.ok_or_else(not_found)?;
        self.membership(viewer, found.id)
            .await?
            .ok_or_else(not_found)
    }

    /// The direct conversation between the viewer and `other`, if it was opened;
    /// never opens one.
    pub async fn existing_direct_conversation(
        &self,
        viewer: Uuid,
        other: Uuid,
    ) -> AppResult<Option<Membership>> {
        let (low, high) = social::ordered(viewer, other);
        match self.find_direct(low, high).await? {
            Some(found) => self.membership(viewer, found.id).await,
            None => Ok(None),
        }
    }

    /// The conversation, if the viewer takes part in it.
    pub async fn membership(
        &self,
        viewer: Uuid,
        conversation_id: Uuid,
    ) -> AppResult<Option<Membership>> {
        let found = participant::Entity::find_by_id((conversation_id, viewer))
            .find_also_related(conversation::Entity)
            .one(&self.db)
            .await?;
        Ok(found.and_then(|(participant, conversation)| {
            conversation.map(|conversation| Membership {
                conversation,
                participant,
            })
        }))
    }

    /// The conversation, if the viewer may receive its messages now: a
    /// participant, and for a direct one, no block between the two.
    pub async fn readable(
        &self,
        viewer: Uuid,
        conversation_id: Uuid,
    ) -> AppResult<Option<Membership>> {
        let Some(membership) = self.membership(viewer, conversation_id).await? else {
            return Ok(None);
        };
        if let Some(other) = counterpart(&membership.conversation, viewer)
            && social::any_block_between(&self.db, viewer, other).await?
        {
            return Ok(None);
        }
        Ok(Some(membership))
    }

    /// A conversation by id, whoever asks: for subscriptions, which listen
    /// before they check the viewer may read it.
    pub async fn find(&self, conversation_id: Uuid) -> AppResult<Option<conversation::Model>> {
        Ok(conversation::Entity::find_by_id(conversation_id)
            .one(&self.db)
            .await?)
    }

    /// The group's conversation, if the viewer takes part in it.
    pub async fn group_membership(
        &self,
        viewer: Uuid,
        group_id: Uuid,
    ) -> AppResult<Option<Membership>> {
        let Some(conversation) = conversation::Entity::find()
            .filter(conversation::Column::GroupId.eq(group_id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        self.membership(viewer, conversation.id).await
    }

    /// The viewer's conversations, most recent activity first. `after` is the
    /// last (activity, id) seen.
    pub async fn conversations(
        &self,
        viewer: Uuid,
        after: Option<(DateTime<Utc>, Uuid)>,
        limit: u64,
    ) -> AppResult<Vec<Membership>> {
        let mut select = participant::Entity::find()
            .filter(participant::Column::UserId.eq(viewer))
            .find_also_related(conversation::Entity);
        if let Some((at, id)) = after {
            select = select.filter(
                Condition::any()
                    .add(conversation::Column::LastActivityAt.lt(at))
                    .add(
                        conversation::Column::LastActivityAt
                            .eq(at)
                            .and(conversation::Column::Id.lt(id)),
                    ),
            );
        }
        // Sorted per request over the viewer's conversations: keeping a sorted
        // copy per participant would cost a group of 10,000 that many row
        // updates on every message.
        Ok(select
            .order_by_desc(conversation::Column::LastActivityAt)
            .order_by_desc(conversation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|(participant, conversation)| {
                conversation.map(|conversation| Membership {
                    conversation,
                    participant,
                })
            })
            .collect())
    }

    /// Where each conversation stands (its last seq), by id: one query.
    pub async fn last_seqs(&self, ids: &[Uuid]) -> AppResult<HashMap<Uuid, i64>> {
        Ok(conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .column(conversation::Column::LastSeq)
            .filter(conversation::Column::Id.is_in(ids.iter().copied()))
            .into_tuple::<(Uuid, i64)>()
            .all(&self.db)
            .await?
            .into_iter()
            .collect())
    }

    /// The other participants' ids, for each conversation: one query.
    pub async fn participants(
        &self,
        conversations: &[Uuid],
        limit_each: usize,
    ) -> Result<HashMap<Uuid, Vec<Uuid>>, sea_orm::DbErr> {
        let rows = participant::Entity::find()
            .filter(participant::Column::ConversationId.is_in(conversations.iter().copied()))
            .order_by_asc(participant::Column::JoinedAt)
            .all(&self.db)
            .await?;
        let mut found: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for row in rows {
            let list = found.entry(row.conversation_id).or_default();
            if list.len() < limit_each {
                list.push(row.user_id);
            }
        }
        Ok(found)
    }

    /// The latest message of each conversation that has one: one query.
    pub async fn last_messages(
        &self,
        conversations: &[(Uuid, i64)],
    ) -> Result<HashMap<Uuid, Message>, sea_orm::DbErr> {
        // Keyed by conversation: a seq asked for twice (it moved on meanwhile)
        // answers with the one found.
        let mut condition = Condition::any();
        let mut any = false;
        for &(id, seq) in conversations {
            if seq > 0 {
                any = true;
                condition = condition.add(
                    message::Column::ConversationId
                        .eq(id)
                        .and(message::Column::Seq.eq(seq)),
                );
            }
        }
        if !any {
            return Ok(HashMap::new());
        }
        Ok(message::Entity::find()
            .filter(condition)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| (m.conversation_id, Message::from(m)))
            .collect())
    }

    /// What a send needs of the conversation, read once and then kept (see
    /// `chat_shapes` for why a kept one is safe).
    async fn shape(&self, id: Uuid) -> AppResult<Option<Shape>> {
        if let Some(shape) = self.shapes.get(id) {
            return Ok(Some(shape));
        }
        let found = conversation::Entity::find_by_id(id).one(&self.db).await?;
        Ok(found.map(|conversation| self.shapes.keep(&conversation)))
    }

    /// Sends a message. A retry with the same `clientMessageId` returns the
    /// first message, whatever the body, and announces nothing.
    pub async fn send(&self, sender: Uuid, outgoing: Outgoing) -> AppResult<Message> {
        let body = parse_body(&outgoing.body)?;
        let client_message_id = outgoing.client_message_id.trim().to_owned();
        if client_message_id.is_empty()
            || client_message_id.chars().count() > MAX_CLIENT_MESSAGE_ID_CHARS
        {
            return Err(AppError::bad_input(
                "clientMessageId",
                format!("clientMessageId must be 1 to {MAX_CLIENT_MESSAGE_ID_CHARS} characters"),
            ));
        }
        let idempotent = |first: Message| {
            if first.conversation_id == outgoing.conversation_id {
                Ok(first)
            } else {
                Err(AppError::conflict(
                    "clientMessageId",
                    "you already used this clientMessageId in another conversation",
                ))
            }
        };
        let conversation_id = outgoing.conversation_id;
        let shape = self.shape(conversation_id).await?.ok_or_else(not_found)?;
        // Whom a direct message goes to; gone when their account is.
        let recipient = match shape.kind {
            Kind::Direct => Some(shape.recipient(sender).ok_or_else(not_found)?),
            Kind::Group => None,
        };
        if let Some(reply_to) = outgoing.reply_to_id {
            let in_conversation = message::Entity::find_by_id(reply_to)
                .one(&self.db)
                .await?
                .is_some_and(|m| m.conversation_id == conversation_id);
            if !in_conversation {
                return Err(AppError::bad_input(
                    "replyToId",
                    "replyToId is not a message of this conversation",
                ));
            }
        }

        if let Some(batches) = &self.batches {
            let draft = chat_batch::Draft {
                id: Uuid::now_v7(),
                conversation_id,
                sender,
                body: body.clone(),
                client_message_id: client_message_id.clone(),
                reply_to_id: outgoing.reply_to_id,
                recipient,
            };
            // Anything a batch could not write as it would alone comes back
            // to be written alone, below, which gives it its own answer.
            if let Batched::Written(message) = batches.write(draft).await {
                return Ok(message);
            }
        }

        // IMMEDIATE on SQLite: the send reads the users before it writes, and a
        // deferred transaction's read could not become a write once another
        // sender has written (SQLITE_BUSY, at once). PostgreSQL ignores it.
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        // Lock order: users, then the conversation. A direct message share-locks
        // both users, which a block, an unfriending or an account deletion
        // (each writing those rows) waits for, and which waits for them. The
        // shape may be older than a deletion: a user found gone ends the send.
        if let Some(recipient) = recipient
            && !share_lock_users(&txn, sender, recipient).await?
        {
            txn.rollback().await?;
            return Err(not_found());
        }
        let draft = chat_send::Draft {
            id: Uuid::now_v7(),
            conversation_id,
            sender,
            body: &body,
            client_message_id: &client_message_id,
            reply_to_id: outgoing.reply_to_id,
            at: now(),
            recipient,
        };
        // Numbers, inserts and moves the sender's read pointer under the
        // conversation's row lock (senders queue there until commit), and reads
        // how the pair stands, all under the locks taken above.
        let written = match chat_send::write(&txn, &draft).await {
            Ok(written) => written,
            Err(err) if is_unique_violation(&err) => {
                // (sender, clientMessageId) is taken: a retry. The first answer
                // stands, whatever changed since.
                txn.rollback().await?;
                let first = self
                    .sent_before(sender, &client_message_id)
                    .await?
                    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("lost a raced send")))?;
                return idempotent(first);
            }
            Err(sea_orm::DbErr::RecordNotFound(_)) => return Err(not_found()),
            Err(err) => return Err(err.into()),
        };
        // No participant row: a removal committed first.
        if !written.participating {
            return Err(not_found());
        }
        if let Some(standing) = written.standing {
            self.judge(standing)?;
        }
        let row = Message {
            id: draft.id,
            conversation_id,
            seq: written.seq,
            sender_id: Some(sender),
            body: body.clone(),
            reply_to_id: outgoing.reply_to_id,
            created_at: draft.at,
            edited_at: None,
            deleted_at: None,
        };
        txn.commit().await?;
        announce(&self.pubsub, &row);
        Ok(row)
    }

    /// A window of the conversation's messages, oldest first. Callers check the
    /// viewer takes part.
    pub async fn messages(&self, conversation_id: Uuid, window: Window) -> AppResult<Vec<Message>> {
        let select =
            message::Entity::find().filter(message::Column::ConversationId.eq(conversation_id));
        let mut rows = match window {
            Window::After { seq, limit } => {
                select
                    .filter(message::Column::Seq.gt(seq))
                    .order_by_asc(message::Column::Seq)
                    .limit(limit)
                    .all(&self.db)
                    .await?
            }
            Window::Before { seq, limit } => {
                let select = match seq {
                    Some(seq) => select.filter(message::Column::Seq.lt(seq)),
                    None => select,
                };
                let mut rows = select
                    .order_by_desc(message::Column::Seq)
                    .limit(limit)
                    .all(&self.db)
                    .await?;
                rows.reverse();
                rows
            }
        };
        Ok(rows.drain(..).map(Message::from).collect())
    }

    /// Messages by id, whatever their conversation: callers check the viewer
    /// may see them (a reply's original is in the reply's conversation).
    pub async fn messages_by_id(&self, ids: &[Uuid]) -> AppResult<Vec<Message>> {
        Ok(message::Entity::find()
            .filter(message::Column::Id.is_in(ids.iter().copied()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Message::from)
            .collect())
    }

    /// Moves the viewer's read pointer forward to `up_to_seq` (never back, never
    /// past the last message).
    pub async fn mark_read(
        &self,
        viewer: Uuid,
        conversation_id: Uuid,
        up_to_seq: i64,
    ) -> AppResult<Membership> {
        if up_to_seq < 0 {
            return Err(AppError::bad_input(
                "upToSeq",
                "upToSeq must not be negative",
            ));
        }
        let membership = self
            .membership(viewer, conversation_id)
            .await?
            .ok_or_else(not_found)?;
        // A read receipt reaches the other side like any write: after an
        // unmatch or a block the pointer stays where it was.
        self.check_may_write(viewer, &membership).await?;
        let target = Ord::min(up_to_seq, membership.conversation.last_seq);
        let moved = participant::Entity::update_many()
            .col_expr(participant::Column::LastReadSeq, Expr::value(target))
            .filter(participant::Column::ConversationId.eq(conversation_id))
            .filter(participant::Column::UserId.eq(viewer))
            .filter(participant::Column::LastReadSeq.lt(target))
            .exec(&self.db)
            .await?;
        if moved.rows_affected > 0 {
            self.pubsub.publish(
                &conversation_topic(conversation_id),
                Event::ReadReceipt {
                    conversation_id,
                    user_id: viewer,
                    up_to_seq: target,
                },
            );
        }
        self.membership(viewer, conversation_id)
            .await?
            .ok_or_else(not_found)
    }

    /// Changes a message's body: its sender only, until it is deleted. The
    /// same body again changes nothing.
    pub async fn edit(&self, editor: Uuid, message_id: Uuid, body: &str) -> AppResult<Message> {
        let body = parse_body(body)?;
        let (message, membership) = self.message_for(editor, message_id).await?;
        self.check_may_write(editor, &membership).await?;
        if message.sender_id != Some(editor) {
            return Err(AppError::forbidden("only its sender may edit a message"));
        }
        if message.deleted_at.is_some() {
            return Err(AppError::conflict("messageId", "the message was deleted"));
        }
        if message.body == body {
            return Ok(message);
        }
        // Only a live message: a delete that won the race keeps its tombstone.
        let updated = message::Entity::update_many()
            .col_expr(message::Column::Body, Expr::value(body))
            .col_expr(message::Column::EditedAt, Expr::value(now()))
            .filter(message::Column::Id.eq(message_id))
            .filter(message::Column::DeletedAt.is_null())
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 0 {
            return Err(AppError::conflict("messageId", "the message was deleted"));
        }
        let edited = message::Entity::find_by_id(message_id)
            .one(&self.db)
            .await?
            .ok_or_else(message_not_found)?;
        let message = Message::from(edited);
        self.publish(
            message.conversation_id,
            Event::MessageEdited {
                message: message.clone(),
            },
        );
        Ok(message)
    }

    /// Turns a message into a tombstone (its place and seq stay, its body and
    /// reactions go): its sender, or an owner or admin of the group. Deleting
    /// again changes nothing.
    pub async fn delete(&self, actor: Uuid, message_id: Uuid) -> AppResult<Message> {
        let (message, membership) = self.message_for(actor, message_id).await?;
        if message.sender_id != Some(actor) {
            let moderates = match membership.conversation.group_id {
                Some(group_id) => groups::role_of(&self.db, group_id, actor)
                    .await?
                    .is_some_and(groups::Role::manages),
                None => false,
            };
            if !moderates {
                return Err(AppError::forbidden(
                    "only its sender, or a group's owner or admins, may delete a message",
                ));
            }
        }
        if message.deleted_at.is_some() {
            return Ok(message);
        }
        let txn = self.db.begin().await?;
        let deleted = message::Entity::update(message::ActiveModel {
            id: Set(message_id),
            body: Set(String::new()),
            deleted_at: Set(Some(now())),
            ..Default::default()
        })
        .exec(&txn)
        .await?;
        message_reaction::Entity::delete_many()
            .filter(message_reaction::Column::MessageId.eq(message_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        let message = Message::from(deleted);
        self.publish(
            message.conversation_id,
            Event::MessageDeleted {
                message: message.clone(),
            },
        );
        Ok(message)
    }

    /// Reacts to a message; a user has one reaction per message, so a new emoji
    /// replaces theirs. Reacting with the one you have changes nothing.
    pub async fn react(&self, user: Uuid, message_id: Uuid, emoji: &str) -> AppResult<Message> {
        let emoji = parse_emoji(emoji)?;
        let (message, membership) = self.message_for(user, message_id).await?;
        self.check_may_write(user, &membership).await?;
        if message.deleted_at.is_some() {
            return Err(AppError::conflict("messageId", "the message was deleted"));
        }
        let mine = message_reaction::Entity::find_by_id((message_id, user))
            .one(&self.db)
            .await?;
        if mine.as_ref().is_some_and(|r| r.emoji == emoji) {
            return Ok(message);
        }
        let distinct: Vec<String> = message_reaction::Entity::find()
            .select_only()
            .column(message_reaction::Column::Emoji)
            .distinct()
            .filter(message_reaction::Column::MessageId.eq(message_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        if !distinct.contains(&emoji) && distinct.len() >= MAX_DISTINCT_REACTIONS {
            return Err(AppError::conflict(
                "emoji",
                format!("a message holds at most {MAX_DISTINCT_REACTIONS} different reactions"),
            ));
        }
        message_reaction::Entity::insert(message_reaction::ActiveModel {
            message_id: Set(message_id),
            user_id: Set(user),
            emoji: Set(emoji.clone()),
            created_at: Set(now()),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                message_reaction::Column::MessageId,
                message_reaction::Column::UserId,
            ])
            .update_columns([
                message_reaction::Column::Emoji,
                message_reaction::Column::CreatedAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        self.publish(
            message.conversation_id,
            Event::ReactionChanged {
                conversation_id: message.conversation_id,
                message_id,
                user_id: user,
                emoji: Some(emoji),
            },
        );
        Ok(message)
    }

    /// Takes back the user's reaction if it is `emoji`; otherwise changes nothing.
    pub async fn unreact(&self, user: Uuid, message_id: Uuid, emoji: &str) -> AppResult<Message> {
        let emoji = parse_emoji(emoji)?;
        let (message, membership) = self.message_for(user, message_id).await?;
        // Taking a reaction back reaches the other side as adding one does.
        self.check_may_write(user, &membership).await?;
        let removed = message_reaction::Entity::delete_many()
            .filter(message_reaction::Column::MessageId.eq(message_id))
            .filter(message_reaction::Column::UserId.eq(user))
            .filter(message_reaction::Column::Emoji.eq(emoji))
            .exec(&self.db)
            .await?;
        if removed.rows_affected > 0 {
            self.publish(
                message.conversation_id,
                Event::ReactionChanged {
                    conversation_id: message.conversation_id,
                    message_id,
                    user_id: user,
                    emoji: None,
                },
            );
        }
        Ok(message)
    }

    /// Each message's reactions as `viewer` sees them, most used first: one query.
    pub async fn reactions(
        &self,
        viewer: Uuid,
        messages: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<Reaction>>, sea_orm::DbErr> {
        let rows = message_reaction::Entity::find()
            .filter(message_reaction::Column::MessageId.is_in(messages.iter().copied()))
            .order_by_asc(message_reaction::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let mut found: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
        for row in rows {
            let list = found.entry(row.message_id).or_default();
            let mine = row.user_id == viewer;
            match list.iter_mut().find(|r| r.emoji == row.emoji) {
                Some(reaction) => {
                    reaction.count += 1;
                    reaction.viewer_reacted |= mine;
                }
                None => list.push(Reaction {
                    emoji: row.emoji,
                    count: 1,
                    viewer_reacted: mine,
                }),
            }
        }
        // Most used first; among equals, the one used first (a stable sort of
        // the rows' order).
        for list in found.values_mut() {
            list.sort_by_key(|r| std::cmp::Reverse(r.count));
        }
        Ok(found)
    }

    /// Who has read up to each (conversation, seq), oldest participants first:
    /// one query for all of them.
    pub async fn readers(
        &self,
        keys: &[(Uuid, i64)],
    ) -> Result<HashMap<(Uuid, i64), Vec<Uuid>>, sea_orm::DbErr> {
        let conversations: Vec<Uuid> = keys.iter().map(|(c, _)| *c).collect();
        let rows = participant::Entity::find()
            .filter(participant::Column::ConversationId.is_in(conversations))
            .order_by_asc(participant::Column::JoinedAt)
            .all(&self.db)
            .await?;
        Ok(keys
            .iter()
            .map(|&(conversation, seq)| {
                let readers = rows
                    .iter()
                    .filter(|p| p.conversation_id == conversation && p.last_read_seq >= seq)
                    .map(|p| p.user_id)
                    .collect();
                ((conversation, seq), readers)
            })
            .collect())
    }

    /// Tells the conversation the user is typing (or stopped); nothing is kept,
    /// and clients forget it after the returned time unless renewed.
    pub async fn set_typing(
        &self,
        user: Uuid,
        conversation_id: Uuid,
        typing: bool,
    ) -> AppResult<DateTime<Utc>> {
        let membership = self
            .readable(user, conversation_id)
            .await?
            .ok_or_else(not_found)?;
        self.check_may_write(user, &membership).await?;
        let expires_at = now() + chrono::Duration::seconds(TYPING_TTL_SECS);
        self.publish(
            conversation_id,
            Event::Typing {
                conversation_id,
                user_id: user,
                typing,
                expires_at,
            },
        );
        Ok(expires_at)
    }

    /// What reaches the other side of a direct conversation (an edit, a
    /// reaction added or taken back, a read receipt, typing) follows the
    /// policy sends follow: after an unmatch, the history stays readable but
    /// nothing new arrives.
    async fn check_may_write(&self, viewer: Uuid, membership: &Membership) -> AppResult<()> {
        match counterpart(&membership.conversation, viewer) {
            Some(other) => self.judge(chat_send::read_standing(&self.db, viewer, other).await?),
            // A group's, or the other side deleted their account: nobody to
            // reach in particular.
            None => Ok(()),
        }
    }

    /// A message the viewer may see (they may read its conversation), with
    /// their place in it; `NOT_FOUND` otherwise.
    async fn message_for(
        &self,
        viewer: Uuid,
        message_id: Uuid,
    ) -> AppResult<(Message, Membership)> {
        let message = message::Entity::find_by_id(message_id)
            .one(&self.db)
            .await?
            .ok_or_else(message_not_found)?;
        let membership = self
            .readable(viewer, message.conversation_id)
            .await?
            .ok_or_else(message_not_found)?;
        Ok((Message::from(message), membership))
    }

    fn publish(&self, conversation_id: Uuid, event: Event) {
        self.pubsub
            .publish(&conversation_topic(conversation_id), event);
    }

    /// The message the sender already sent under this client id.
    async fn sent_before(
        &self,
        sender: Uuid,
        client_message_id: &str,
    ) -> AppResult<Option<Message>> {
        Ok(message::Entity::find()
            .filter(message::Column::SenderId.eq(sender))
            .filter(message::Column::ClientMessageId.eq(client_message_id))
            .one(&self.db)
            .await?
            .map(Message::from))
    }

    async fn find_direct(&self, low: Uuid, high: Uuid) -> AppResult<Option<conversation::Model>> {
        Ok(conversation::Entity::find()
            .filter(conversation::Column::DirectLow.eq(low))
            .filter(conversation::Column::DirectHigh.eq(high))
            .one(&self.db)
            .await?)
    }

    /// [`judge`], under this service's policy.
    fn judge(&self, standing: chat_send::Standing) -> AppResult<()> {
        judge(self.policy, standing)
    }

    /// The policy of [`Self::judge`], read now, for opening a conversation.
    async fn check_may_message(
        &self,
        db: &impl ConnectionTrait,
        viewer: Uuid,
        other: Uuid,
    ) -> AppResult<()> {
        social::check_reachable(db, viewer, other, social::OwnBlock::Refuse).await?;
        self.judge(chat_send::read_standing(db, viewer, other).await?)
    }
}

/// The other user of a direct conversation, as `user` sees it; none for a
/// group's, or once the other side deleted their account.
fn counterpart(conversation: &conversation::Model, user: Uuid) -> Option<Uuid> {
    Shape::of(conversation).recipient(user)
}

/// A message body: trimmed, 1 to 4000 characters.
pub fn parse_body(raw: &str) -> AppResult<String> {
    let body = raw.trim();
    if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
        return Err(AppError::bad_input(
            "body",
            format!("body must be 1 to {MAX_BODY_CHARS} characters"),
        ));
    }
    Ok(body.to_owned())
}

/// Tells a conversation's subscribers of a message just committed.
pub(crate) fn announce(pubsub: &Events, message: &Message) {
    pubsub.publish(
        &conversation_topic(message.conversation_id),
        Event::MessageAdded {
            message: message.clone(),
        },
    );
}

/// The direct-message policy applied to how a pair stands (read by the send
/// under its locks): never across a block (whoever blocked is `NOT_FOUND` to
/// the other, as everywhere), never after their match ended (unless they are
/// friends), and friends or matches only unless the policy says everyone.
pub fn judge(policy: DirectPolicy, standing: chat_send::Standing) -> AppResult<()> {
    social::judge_blocks(
        standing.recipient_blocked,
        standing.sender_blocked,
        social::OwnBlock::Refuse,
    )?;
    if standing.unmatched && !standing.friends {
        return Err(AppError::forbidden("your match with this user has ended"));
    }
    if policy == DirectPolicy::Friends && !standing.friends && !standing.matched {
        return Err(AppError::forbidden(
            "you can message your friends and matches only",
        ));
    }
    Ok(())
}

/// The current time to the microsecond: what PostgreSQL stores, so activity
/// times (and the cursors made of them) compare alike on both databases.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Whether both users are still there, share-locking their rows on
/// PostgreSQL, where a block, unfriending or account deletion writes them: it
/// waits for this transaction, or this one for it. SQLite needs no lock: the
/// send's transaction is IMMEDIATE, so no other writer runs until it ends.
async fn share_lock_users(db: &impl ConnectionTrait, a: Uuid, b: Uuid) -> AppResult<bool> {
    let mut users = entity::user::Entity::find()
        .select_only()
        .column(entity::user::Column::Id)
        .filter(entity::user::Column::Id.is_in([a, b]));
    if db.get_database_backend() == DbBackend::Postgres {
        users = users.lock_shared();
    }
    Ok(users.into_tuple::<Uuid>().all(db).await?.len() == 2)
}

fn not_found() -> AppError {
    AppError::not_found("conversation not found")
}

fn message_not_found() -> AppError {
    AppError::not_found("message not found")
}

/// A reaction: one emoji (a short sequence at most), no letters or spaces.
pub fn parse_emoji(raw: &str) -> AppResult<String> {
    let emoji = raw.trim();
    let plausible = !emoji.is_empty()
        && emoji.chars().count() <= MAX_EMOJI_CHARS
        && emoji
            .chars()
            .all(|c| !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control());
    if !plausible {
        return Err(AppError::bad_input(
            "emoji",
            format!("emoji must be one emoji (at most {MAX_EMOJI_CHARS} characters)"),
        ));
    }
    Ok(emoji.to_owned())
}

async fn add_participant(
    db: &impl ConnectionTrait,
    conversation_id: Uuid,
    user_id: Uuid,
    last_read_seq: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    participant::Entity::insert(participant::ActiveModel {
        conversation_id: Set(conversation_id),
        user_id: Set(user_id),
        last_read_seq: Set(last_read_seq),
        joined_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A user's arrival in a conversation: announced after commit, so their
/// feeds of all their conversations start following it from `from_seq`.
#[derive(Clone, Copy, Debug)]
pub struct Joined {
    pub conversation_id: Uuid,
    pub from_seq: i64,
}

impl Joined {
    pub fn event(self, user_id: Uuid) -> Event {
        Event::ConversationJoined {
            conversation_id: self.conversation_id,
            user_id,
            from_seq: self.from_seq,
        }
    }
}

/// Opens a new group's conversation with its owner in it; in the group's
/// creating transaction.
pub async fn open_group_conversation(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    owner: Uuid,
) -> AppResult<Joined> {
    let now = now();
    let id = Uuid::now_v7();
    conversation::Entity::insert(conversation::ActiveModel {
        id: Set(id),
        kind: Set(Kind::Group.as_str().to_owned()),
        group_id: Set(Some(group_id)),
        direct_low: Set(None),
        direct_high: Set(None),
        last_seq: Set(0),
        last_activity_at: Set(now),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    add_participant(db, id, owner, 0, now).await?;
    Ok(Joined {
        conversation_id: id,
        from_seq: 0,
    })
}

/// A new member joins the group's conversation, with everything before their
/// arrival counted as read; in the membership transaction.
pub async fn join_group_conversation(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<Joined>> {
    let Some(conversation) = conversation::Entity::find()
        .filter(conversation::Column::GroupId.eq(group_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    add_participant(db, conversation.id, user_id, conversation.last_seq, now()).await?;
    Ok(Some(Joined {
        conversation_id: conversation.id,
        from_seq: conversation.last_seq,
    }))
}

/// A member leaves the group's conversation; in the membership transaction.
/// Returns the conversation, whose subscribers the caller tells after commit.
pub async fn leave_group_conversation(
    db: &impl ConnectionTrait,
    group_id: Uuid,
    user_id: Uuid,
) -> AppResult<Option<Uuid>> {
    let Some(conversation) = conversation::Entity::find()
        .filter(conversation::Column::GroupId.eq(group_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    // Deleting the row waits for a send that holds it (see `is_participant`),
    // so a removal and a send are ordered.
    participant::Entity::delete_by_id((conversation.id, user_id))
        .exec(db)
        .await?;
    Ok(Some(conversation.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_trimmed_and_bounded() {
        assert_eq!(parse_body("  hi  ").unwrap(), "hi");
        assert!(parse_body(" \n ").is_err());
        assert!(parse_body(&"x".repeat(MAX_BODY_CHARS + 1)).is_err());
        assert!(parse_body(&"é".repeat(MAX_BODY_CHARS)).is_ok());
    }

    #[test]
    fn reactions_are_emoji_not_words() {
        for ok in ["👍", "❤️", "👨‍👩‍👧‍👦", "🇵🇹", " 🎉 "] {
            assert!(parse_emoji(ok).is_ok(), "{ok}");
        }
        for bad in ["", "ok", "👍 👍", "a👍", &"🎉".repeat(11)] {
            assert!(parse_emoji(bad).is_err(), "{bad}");
        }
    }
}
