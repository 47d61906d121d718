//! The writing half of `sendMessage`, inside the send's transaction (after the
//! users' share locks): number the message, insert it, move the sender's read
//! pointer, and read how the pair stands. On PostgreSQL that is one statement
//! (data-modifying CTEs); on SQLite, which has none, four.
//!
//! Why each part is safe (see also `chat::Chat::send`):
//! - The seq bump row-locks the conversation; under READ COMMITTED a sender
//!   that waited re-reads the row, so numbers stay gapless.
//! - The read-pointer update row-locks the sender's participant row, and finds
//!   none if a removal committed first: that is the participation check.
//! - Blocks and friendship cannot change under the users' share locks, so the
//!   statement's snapshot is current for them.
//! - A `(sender, clientMessageId)` that is taken fails the insert with a unique
//!   violation: the caller answers with the first message.

use chrono::{DateTime, Utc};
use entity::{conversation_participant as participant, message};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, IntoActiveModel,
    QueryFilter, Statement, sea_query::Expr,
};
use uuid::Uuid;

use crate::{domain::social, infra::sql};

/// How the sender stands to a direct message's recipient.
#[derive(Clone, Copy, Debug, Default, FromQueryResult)]
pub struct Standing {
    /// The sender blocked the recipient.
    pub sender_blocked: bool,
    /// The recipient blocked the sender.
    pub recipient_blocked: bool,
    pub friends: bool,
    /// They have a match (discovery) that has not ended.
    pub matched: bool,
    /// They had a match and it ended: no messages unless they are friends.
    pub unmatched: bool,
}

/// What writing found.
pub struct Written {
    pub seq: i64,
    /// False when the sender is not (any more) a participant.
    pub participating: bool,
    /// For a direct message.
    pub standing: Option<Standing>,
}

/// A message to write; its seq is given by the write.
pub struct Draft<'a> {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender: Uuid,
    pub body: &'a str,
    pub client_message_id: &'a str,
    pub reply_to_id: Option<Uuid>,
    pub at: DateTime<Utc>,
    pub recipient: Option<Uuid>,
}

pub async fn write(db: &impl ConnectionTrait, draft: &Draft<'_>) -> Result<Written, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => write_in_one(db, draft).await,
        _ => write_stepwise(db, draft).await,
    }
}

const ONE_STATEMENT: &str = "\
WITH bumped AS (
    UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = $1
    WHERE id = $2 RETURNING last_seq
), inserted AS (
    INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id,
                          reply_to_id, created_at, edited_at, deleted_at)
    SELECT $3, $2, last_seq, $4, $5, $6, $7, $1, NULL, NULL FROM bumped
    RETURNING seq
), reading AS (
    UPDATE conversation_participants SET last_read_seq = (SELECT seq FROM inserted)
    WHERE conversation_id = $2 AND user_id = $4 RETURNING 1
)
SELECT (SELECT seq FROM inserted) AS seq,
       EXISTS(SELECT 1 FROM reading) AS participating,
       EXISTS(SELECT 1 FROM blocks WHERE blocker_id = $4 AND blocked_id = $8) AS sender_blocked,
       EXISTS(SELECT 1 FROM blocks WHERE blocker_id = $8 AND blocked_id = $4) AS recipient_blocked,
       EXISTS(SELECT 1 FROM friendships WHERE user_id = $4 AND friend_id = $8) AS friends,
       EXISTS(SELECT 1 FROM matches WHERE user_low = $9 AND user_high = $10
              AND unmatched_at IS NULL) AS matched,
       EXISTS(SELECT 1 FROM matches WHERE user_low = $9 AND user_high = $10
              AND unmatched_at IS NOT NULL) AS unmatched";

async fn write_in_one(db: &impl ConnectionTrait, draft: &Draft<'_>) -> Result<Written, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        seq: Option<i64>,
        participating: bool,
        #[sea_orm(nested)]
        standing: Standing,
    }
    // A group message has no pair; nothing matches the nil id.
    let (low, high) = draft
        .recipient
        .map(|recipient| social::ordered(draft.sender, recipient))
        .unwrap_or_default();
    let values: Vec<sea_orm::Value> = vec![
        draft.at.into(),
        draft.conversation_id.into(),
        draft.id.into(),
        draft.sender.into(),
        draft.body.into(),
        draft.client_message_id.into(),
        draft.reply_to_id.into(),
        draft.recipient.into(),
        low.into(),
        high.into(),
    ];
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        ONE_STATEMENT,
        values,
    ))
    .one(db)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("conversation".into()))?;
    let seq = row
        .seq
        .ok_or_else(|| DbErr::RecordNotFound("conversation".into()))?;
    Ok(Written {
        seq,
        participating: row.participating,
        standing: draft.recipient.map(|_| row.standing),
    })
}

async fn write_stepwise(db: &impl ConnectionTrait, draft: &Draft<'_>) -> Result<Written, DbErr> {
    #[derive(FromQueryResult)]
    struct Bumped {
        last_seq: i64,
    }
    // The first statement writes, so SQLite's write lock is taken before any
    // read: its writers run one at a time from here to commit.
    let seq = Bumped::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "UPDATE conversations SET last_seq = last_seq + 1, last_activity_at = ? \
         WHERE id = ? RETURNING last_seq",
        [draft.at.into(), draft.conversation_id.into()],
    ))
    .one(db)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("conversation".into()))?
    .last_seq;
    let row = message::Model {
        id: draft.id,
        conversation_id: draft.conversation_id,
        seq,
        sender_id: Some(draft.sender),
        body: draft.body.to_owned(),
        client_message_id: draft.client_message_id.to_owned(),
        reply_to_id: draft.reply_to_id,
        created_at: draft.at,
        edited_at: None,
        deleted_at: None,
    };
    message::Entity::insert(row.into_active_model())
        .exec_without_returning(db)
        .await?;
    let reading = participant::Entity::update_many()
        .col_expr(participant::Column::LastReadSeq, Expr::value(seq))
        .filter(participant::Column::ConversationId.eq(draft.conversation_id))
        .filter(participant::Column::UserId.eq(draft.sender))
        .exec(db)
        .await?;
    let standing = match draft.recipient {
        Some(recipient) => Some(read_standing(db, draft.sender, recipient).await?),
        None => None,
    };
    Ok(Written {
        seq,
        participating: reading.rows_affected > 0,
        standing,
    })
}

/// How `sender` stands to `recipient`, read on `db` (the send's transaction, or
/// the connection when a conversation is opened).
pub async fn read_standing(
    db: &impl ConnectionTrait,
    sender: Uuid,
    recipient: Uuid,
) -> Result<Standing, DbErr> {
    const STANDING: &str = "SELECT \
        EXISTS(SELECT 1 FROM blocks WHERE blocker_id = ? AND blocked_id = ?) AS sender_blocked, \
        EXISTS(SELECT 1 FROM blocks WHERE blocker_id = ? AND blocked_id = ?) AS recipient_blocked, \
        EXISTS(SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?) AS friends, \
        EXISTS(SELECT 1 FROM matches WHERE user_low = ? AND user_high = ? \
               AND unmatched_at IS NULL) AS matched, \
        EXISTS(SELECT 1 FROM matches WHERE user_low = ? AND user_high = ? \
               AND unmatched_at IS NOT NULL) AS unmatched";
    let (low, high) = social::ordered(sender, recipient);
    let values: Vec<sea_orm::Value> = vec![
        sender.into(),
        recipient.into(),
        recipient.into(),
        sender.into(),
        sender.into(),
        recipient.into(),
        low.into(),
        high.into(),
        low.into(),
        high.into(),
    ];
    Ok(
        Standing::find_by_statement(sql::statement(db.get_database_backend(), STANDING, values))
            .one(db)
            .await?
            .unwrap_or_default(),
    )
}
