//! The one place a message is built ([`Draft::row`]) and, for a send alone,
//! written: inside the send's transaction (after the users' share locks),
//! number the message, insert it, move the sender's read pointer, and read how
//! the pair stands (social's SQL, [`standing_columns`]). On PostgreSQL that is
//! one statement (data-modifying CTEs); on SQLite, which has none, four.
//!
//! Why each part is safe (see also `send`):
//! - The seq bump row-locks the conversation; under READ COMMITTED a sender
//!   that waited re-reads the row, so numbers stay gapless.
//! - The read-pointer update row-locks the sender's participant row, and finds
//!   none if a removal committed first: that is the participation check.
//! - Blocks and friendship cannot change under the users' share locks, so the
//!   statement's snapshot is current for them.
//! - A `(sender, clientMessageId)` that is taken fails the insert with a unique
//!   violation: the caller answers with the first message.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use entity::{conversation_participant as participant, message};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult, IntoActiveModel,
    QueryFilter, Statement, sea_query::Expr,
};

use super::Draft;
use crate::domain::{
    chat::Message,
    social::{self, Standing, standing::standing_columns},
};

/// What writing found.
pub struct Written {
    pub message: Message,
    /// False when the sender is not (any more) a participant.
    pub participating: bool,
    /// For a direct message: how the sender stands to the recipient.
    pub standing: Option<Standing>,
}

impl Draft {
    /// The message this draft becomes, written as `seq` at `at`.
    pub(super) fn row(&self, seq: i64, at: DateTime<Utc>) -> message::Model {
        message::Model {
            id: self.id,
            conversation_id: self.conversation_id,
            seq,
            sender_id: Some(self.sender),
            body: self.body.clone(),
            client_message_id: self.client_message_id.clone(),
            reply_to_id: self.reply_to_id,
            created_at: at,
            edited_at: None,
            deleted_at: None,
        }
    }

    /// The pair of a direct message in order (`social::ordered`); the nil id
    /// for a group's, which has none: nothing matches it.
    pub(super) fn pair(&self) -> (uuid::Uuid, uuid::Uuid) {
        self.recipient
            .map(|recipient| social::ordered(self.sender, recipient))
            .unwrap_or_default()
    }
}

/// Writes `draft` as of `at`, in the caller's transaction.
pub async fn write(
    db: &impl ConnectionTrait,
    draft: &Draft,
    at: DateTime<Utc>,
) -> Result<Written, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => write_in_one(db, draft, at).await,
        _ => write_stepwise(db, draft, at).await,
    }
}

static ONE_STATEMENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "\
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
       {}",
        standing_columns("$4", "$8", "$9", "$10")
    )
});

async fn write_in_one(
    db: &impl ConnectionTrait,
    draft: &Draft,
    at: DateTime<Utc>,
) -> Result<Written, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        seq: Option<i64>,
        participating: bool,
        #[sea_orm(nested)]
        standing: Standing,
    }
    let (low, high) = draft.pair();
    let values: Vec<sea_orm::Value> = vec![
        at.into(),
        draft.conversation_id.into(),
        draft.id.into(),
        draft.sender.into(),
        draft.body.as_str().into(),
        draft.client_message_id.as_str().into(),
        draft.reply_to_id.into(),
        draft.recipient.into(),
        low.into(),
        high.into(),
    ];
    let row = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        ONE_STATEMENT.as_str(),
        values,
    ))
    .one(db)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("conversation".into()))?;
    let seq = row
        .seq
        .ok_or_else(|| DbErr::RecordNotFound("conversation".into()))?;
    Ok(Written {
        message: Message::from(draft.row(seq, at)),
        participating: row.participating,
        standing: draft.recipient.map(|_| row.standing),
    })
}

async fn write_stepwise(
    db: &impl ConnectionTrait,
    draft: &Draft,
    at: DateTime<Utc>,
) -> Result<Written, DbErr> {
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
        [at.into(), draft.conversation_id.into()],
    ))
    .one(db)
    .await?
    .ok_or_else(|| DbErr::RecordNotFound("conversation".into()))?
    .last_seq;
    let row = draft.row(seq, at);
    message::Entity::insert(row.clone().into_active_model())
        .exec_without_returning(db)
        .await?;
    let reading = participant::Entity::update_many()
        .col_expr(participant::Column::LastReadSeq, Expr::value(seq))
        .filter(participant::Column::ConversationId.eq(draft.conversation_id))
        .filter(participant::Column::UserId.eq(draft.sender))
        .exec(db)
        .await?;
    let standing = match draft.recipient {
        Some(recipient) => Some(social::read_standing(db, draft.sender, recipient).await?),
        None => None,
    };
    Ok(Written {
        message: Message::from(row),
        participating: reading.rows_affected > 0,
        standing,
    })
}
