//! The one send path. A send is checked (body, `clientMessageId`, reply), its
//! conversation's shape is read (kept in memory, see `shapes`), and its
//! [`Draft`] is written: on PostgreSQL with send batching, together with the
//! other sends waiting (`batch`); otherwise, or whenever a batch could not
//! write it as it would alone, by itself here. Either way `write` builds and
//! writes the message, and `verdict` judges it before commit and announces it
//! after.
//!
//! Why a send alone is safe (see also `write`): it share-locks both users of a
//! direct conversation first (a block, an unfriending or an account deletion
//! waits for it, or it for them), then numbers the message under the
//! conversation's row lock, and reads how the pair stands under those locks.

mod batch;
mod verdict;
mod write;

use entity::{conversation, message};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::{Chat, Kind, Message, Shape, not_found, now, outbox_events, parse_body};
use crate::{
    domain::media,
    error::{AppError, AppResult, is_unique_violation},
};
use batch::Batched;

pub use batch::SendBatches;

const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 64;

/// A message to send, as the client gave it.
pub struct Outgoing {
    pub conversation_id: Uuid,
    pub body: String,
    pub client_message_id: String,
    pub reply_to_id: Option<Uuid>,
    /// Attachments the sender uploaded and has not sent yet; with any, the
    /// body may be empty.
    pub attachment_ids: Vec<Uuid>,
}

/// A checked message to write, alone or in a batch; its seq and time are
/// given by the write.
#[derive(Clone, Debug)]
pub struct Draft {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender: Uuid,
    pub body: String,
    pub client_message_id: String,
    pub reply_to_id: Option<Uuid>,
    /// For a direct message: the pair's other side.
    pub recipient: Option<Uuid>,
    pub attachment_ids: Vec<Uuid>,
}

impl Chat {
    /// What a send needs of the conversation, read once and then kept (see
    /// `shapes` for why a kept one is safe).
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
        media::check_attachment_ids(&outgoing.attachment_ids)?;
        let body = if outgoing.attachment_ids.is_empty() || !outgoing.body.trim().is_empty() {
            parse_body(&outgoing.body)?
        } else {
            String::new()
        };
        let client_message_id = outgoing.client_message_id.trim().to_owned();
        if client_message_id.is_empty()
            || client_message_id.chars().count() > MAX_CLIENT_MESSAGE_ID_CHARS
            || client_message_id.chars().any(char::is_control)
        {
            return Err(AppError::bad_input(
                "clientMessageId",
                format!(
                    "clientMessageId must be 1 to {MAX_CLIENT_MESSAGE_ID_CHARS} characters, \
                     none of them control characters"
                ),
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

        let draft = Draft {
            id: Uuid::now_v7(),
            conversation_id,
            sender,
            body,
            client_message_id,
            reply_to_id: outgoing.reply_to_id,
            recipient,
            attachment_ids: outgoing.attachment_ids,
        };
        // Batches write plain messages; one with attachments is written alone.
        if let Some(batches) = self
            .batches
            .as_ref()
            .filter(|_| draft.attachment_ids.is_empty())
        {
            // Anything a batch could not write as it would alone comes back
            // to be written alone, below, which gives it its own answer.
            if let Batched::Written(message) = batches.write(draft.clone()).await {
                return Ok(message);
            }
        }

        // The send reads the users before it writes (see `Db::begin_writing`).
        let txn = self.db.begin_writing().await?;
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
        // Numbers, inserts and moves the sender's read pointer under the
        // conversation's row lock (senders queue there until commit), and reads
        // how the pair stands, all under the locks taken above.
        let at = now();
        let written = match write::write(&txn, &draft, at).await {
            Ok(written) => written,
            Err(err) if is_unique_violation(&err) => {
                // (sender, clientMessageId) is taken: a retry. The first answer
                // stands, whatever changed since.
                txn.rollback().await?;
                let first = self
                    .sent_before(sender, &draft.client_message_id)
                    .await?
                    .ok_or_else(|| AppError::Internal(anyhow::anyhow!("lost a raced send")))?;
                return idempotent(first);
            }
            Err(sea_orm::DbErr::RecordNotFound(_)) => return Err(not_found()),
            Err(err) => return Err(err.into()),
        };
        verdict::judge(self.policy, &written)?;
        // After the insert: a retry has already been answered above, with
        // the first message and the attachments it took.
        media::attach(&txn, sender, draft.id, &draft.attachment_ids, at).await?;
        self.outbox
            .append(&txn, outbox_events::message_sent(&draft, &written.message))
            .await?;
        txn.commit().await?;
        verdict::announce(&self.pubsub, &written.message);
        Ok(written.message)
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
