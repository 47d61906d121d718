//! Concurrent sends on PostgreSQL, written together (group commit).
//!
//! Alone, a send is four round trips: BEGIN, the users' share locks, the one
//! writing statement of `write`, COMMIT. Under load PostgreSQL spends
//! most of its time per send on those statements' overhead (planning,
//! protocol, commit), not on their work. So a send queues its draft here; a
//! writer takes every draft waiting (one per conversation) and writes them
//! in one transaction: the same statements over arrays, after one that sets
//! the transaction's plans and lock patience (`BATCH_SETTINGS`).
//!
//! The writer announces each message once the batch commits, so a message
//! is announced even when its sender stopped waiting (a dropped request).
//!
//! A batch commits only when every draft in it was written as it would have
//! been alone: numbered, its sender still a participant, its pair allowed to
//! message. Anything else (a block, a removal, a retried `clientMessageId`, a
//! deadlock with another batch, any error) rolls the whole batch back and
//! answers each draft [`Batched::Alone`]: the sender writes it by itself, down
//! the path that gives each send its own answer. Why the batch is as safe as
//! a send alone:
//! - The share locks are taken first, in id order, for every user of the
//!   batch's direct drafts; a block, an unfriending or an account deletion
//!   waits for the batch, or the batch for it.
//! - Numbering bumps each conversation's `last_seq` under its row lock, as
//!   alone. One draft per conversation per batch: an UPDATE touches a row
//!   once per statement, so a second draft into the same conversation is
//!   written alone (it waits on the row lock, then takes the next number).
//! - The read pointer's update finds no participant row if a removal
//!   committed first, as alone.

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock},
};

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, FromQueryResult, Statement, TransactionTrait, Value,
};
use tokio::{
    sync::{Mutex, mpsc, oneshot},
    task::JoinHandle,
};
use uuid::Uuid;

use super::{Draft, verdict, write::Written};
use crate::{
    config::DirectPolicy,
    domain::{
        chat::{Message, now, outbox_events},
        events::Events,
        outbox::Outbox,
        social::{Standing, standing::standing_columns},
    },
    infra::db::Db,
};

/// Drafts written in one transaction at most.
const MAX_BATCH: usize = 64;
/// Batches in flight at once: while one waits on PostgreSQL (or on a lock),
/// the next drafts are written beside it. More writers make smaller batches:
/// at 32 senders, 4 writers wrote 2,700–2,900 sends/s and 2 wrote
/// 3,100–3,600 (`bench/README.md`).
const WRITERS: usize = 2;
/// Drafts waiting at most; past that a send is written alone.
const QUEUED: usize = 1024;

/// What became of a queued draft.
pub enum Batched {
    /// Written, committed and announced.
    Written(Message),
    /// Not written: write it alone.
    Alone,
}

struct Queued {
    draft: Draft,
    answer: oneshot::Sender<Batched>,
}

/// The queue the writers take batches from.
#[derive(Clone)]
pub struct SendBatches {
    queue: mpsc::Sender<Queued>,
}

impl SendBatches {
    /// Starts the writers on `db` (PostgreSQL); they stop when the handles
    /// are aborted or every [`SendBatches`] is dropped.
    pub fn start(
        db: Db,
        pubsub: Events,
        policy: DirectPolicy,
        outbox: Outbox,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let (queue, waiting) = mpsc::channel(QUEUED);
        let writer = Writer {
            db,
            pubsub,
            policy,
            outbox,
            waiting: Arc::new(Mutex::new(waiting)),
        };
        let writers = (0..WRITERS)
            .map(|_| tokio::spawn(writer.clone().run()))
            .collect();
        (Self { queue }, writers)
    }

    /// Writes `draft` with whichever others are waiting.
    pub async fn write(&self, draft: Draft) -> Batched {
        let (answer, answered) = oneshot::channel();
        if self.queue.try_send(Queued { draft, answer }).is_err() {
            return Batched::Alone;
        }
        // A writer gone (the server stopping) drops the answer: write alone.
        answered.await.unwrap_or(Batched::Alone)
    }
}

/// One of the tasks that take batches off the queue and write them.
#[derive(Clone)]
struct Writer {
    db: Db,
    pubsub: Events,
    policy: DirectPolicy,
    outbox: Outbox,
    waiting: Arc<Mutex<mpsc::Receiver<Queued>>>,
}

impl Writer {
    async fn run(self) {
        while let Some(batch) = self.next_batch().await {
            self.write(batch).await;
        }
    }

    /// The first draft to arrive and every one waiting behind it.
    async fn next_batch(&self) -> Option<Vec<Queued>> {
        let mut waiting = self.waiting.lock().await;
        let mut batch = vec![waiting.recv().await?];
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        Some(batch)
    }

    async fn write(&self, batch: Vec<Queued>) {
        let (mut batch, again) = one_per_conversation(batch);
        for queued in again {
            let _ = queued.answer.send(Batched::Alone);
        }
        // Rows are locked in conversation order, so two batches sharing
        // conversations rarely wait on each other in a circle.
        batch.sort_by_key(|queued| queued.draft.conversation_id);
        let drafts: Vec<&Draft> = batch.iter().map(|queued| &queued.draft).collect();
        let written = match write_together(&self.db, self.policy, self.outbox, &drafts).await {
            Ok(written) => written,
            Err(err) => {
                // Conflicts (a retried clientMessageId, a deadlock) end up
                // here as well as outages; alone, each send reports its own.
                tracing::debug!(error = %err, drafts = drafts.len(), "a batch of sends is written alone");
                None
            }
        };
        let outcome = if written.is_some() {
            "committed"
        } else {
            "alone"
        };
        metrics::counter!("kith_send_batches_total", "outcome" => outcome).increment(1);
        metrics::histogram!("kith_send_batch_drafts").record(drafts.len() as f64);
        let Some(messages) = written else {
            for queued in batch {
                let _ = queued.answer.send(Batched::Alone);
            }
            return;
        };
        for (queued, message) in batch.into_iter().zip(messages) {
            verdict::announce(&self.pubsub, &message);
            let _ = queued.answer.send(Batched::Written(message));
        }
    }
}

/// The batch with one draft per conversation, and the drafts left over.
fn one_per_conversation(batch: Vec<Queued>) -> (Vec<Queued>, Vec<Queued>) {
    let mut seen = HashSet::with_capacity(batch.len());
    batch
        .into_iter()
        .partition(|queued| seen.insert(queued.draft.conversation_id))
}

/// Writes `drafts` in one transaction: their messages, in order, and their
/// events; `None`, rolled back, if any one could not be written as it would
/// alone (judged as a send alone is, by `verdict`).
async fn write_together(
    db: &Db,
    policy: DirectPolicy,
    outbox: Outbox,
    drafts: &[&Draft],
) -> Result<Option<Vec<Message>>, DbErr> {
    let at = now();
    let txn = db.begin().await?;
    txn.execute_unprepared(BATCH_SETTINGS).await?;
    let mut users: Vec<Uuid> = drafts
        .iter()
        .filter_map(|draft| Some([draft.sender, draft.recipient?]))
        .flatten()
        .collect();
    users.sort_unstable();
    users.dedup();
    if !users.is_empty() && share_lock(&txn, &users).await? != users.len() {
        // A user gone since the shape was kept.
        txn.rollback().await?;
        return Ok(None);
    }
    let rows = WrittenRow::find_by_statement(write_statement(drafts, at))
        .all(&txn)
        .await?;
    let mut messages = Vec::with_capacity(drafts.len());
    for (draft, row) in drafts.iter().zip(&rows) {
        let (Some(seq), true) = (row.seq, row.id == draft.id) else {
            break;
        };
        let written = Written {
            message: Message::from(draft.row(seq, at)),
            participating: row.participating,
            standing: draft.recipient.map(|_| row.standing),
        };
        if verdict::judge(policy, &written).is_err() {
            break;
        }
        messages.push(written.message);
    }
    if messages.len() != drafts.len() {
        txn.rollback().await?;
        return Ok(None);
    }
    let events = drafts
        .iter()
        .zip(&messages)
        .map(|(draft, message)| outbox_events::message_sent(draft, message));
    if let Err(err) = outbox.append_all(&txn, events).await {
        txn.rollback().await?;
        return Err(DbErr::Custom(format!("appending events: {err:?}")));
    }
    txn.commit().await?;
    Ok(Some(messages))
}

/// For the batch's transaction only:
/// - Generic plans. The pool plans every statement for its values
///   (`app::connect` says why), and the writing statement's plan, the same
///   whatever the drafts, was 40 % of PostgreSQL's time per batch; kept, it
///   is planned once per connection.
/// - Little patience for locks. A batch stuck behind a long transaction (an
///   account or a group being deleted) would hold every send behind it; it
///   gives up instead, and its sends wait alone, each for its own lock.
const BATCH_SETTINGS: &str = "SELECT set_config('plan_cache_mode', 'force_generic_plan', true), \
     set_config('lock_timeout', '200ms', true)";

/// Share-locks `users` (sorted) in id order; how many are still there.
async fn share_lock(db: &impl ConnectionTrait, users: &[Uuid]) -> Result<usize, DbErr> {
    let locked = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR SHARE",
            [Value::from(users.to_vec())],
        ))
        .await?;
    Ok(locked.len())
}

/// `write`'s writing statement over arrays, one element per draft: it
/// numbers and inserts each message, moves each sender's read pointer, and
/// reads how each direct pair stands. One row per draft, in their order.
static WRITE_TOGETHER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "\
WITH drafts AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
                         $6::uuid[], $7::uuid[], $8::uuid[], $9::uuid[])
        WITH ORDINALITY AS d(id, conversation_id, sender_id, body, client_message_id,
                             reply_to_id, recipient, low, high, n)
), bumped AS (
    UPDATE conversations c SET last_seq = c.last_seq + 1, last_activity_at = $10
    FROM drafts d WHERE c.id = d.conversation_id
    RETURNING c.id, c.last_seq
), inserted AS (
    INSERT INTO messages (id, conversation_id, seq, sender_id, body, client_message_id,
                          reply_to_id, created_at, edited_at, deleted_at)
    SELECT d.id, d.conversation_id, b.last_seq, d.sender_id, d.body, d.client_message_id,
           NULLIF(d.reply_to_id, '00000000-0000-0000-0000-000000000000'), $10, NULL, NULL
    FROM drafts d JOIN bumped b ON b.id = d.conversation_id
    RETURNING id, seq
), reading AS (
    UPDATE conversation_participants p SET last_read_seq = i.seq
    FROM drafts d JOIN inserted i ON i.id = d.id
    WHERE p.conversation_id = d.conversation_id AND p.user_id = d.sender_id
    RETURNING d.id
)
SELECT d.id, i.seq,
       EXISTS(SELECT 1 FROM reading r WHERE r.id = d.id) AS participating,
       {}
FROM drafts d LEFT JOIN inserted i ON i.id = d.id
ORDER BY d.n",
        standing_columns("d.sender_id", "d.recipient", "d.low", "d.high")
    )
});

#[derive(FromQueryResult)]
struct WrittenRow {
    id: Uuid,
    seq: Option<i64>,
    participating: bool,
    #[sea_orm(nested)]
    standing: Standing,
}

fn write_statement(drafts: &[&Draft], at: DateTime<Utc>) -> Statement {
    // Arrays cannot hold NULL here: the nil id stands for "none", which no
    // row has (and a group's message has no pair).
    let uuids =
        |of: fn(&Draft) -> Uuid| Value::from(drafts.iter().map(|d| of(d)).collect::<Vec<_>>());
    let texts = |of: fn(&Draft) -> &str| {
        Value::from(drafts.iter().map(|d| of(d).to_owned()).collect::<Vec<_>>())
    };
    let values = vec![
        uuids(|d| d.id),
        uuids(|d| d.conversation_id),
        uuids(|d| d.sender),
        texts(|d| &d.body),
        texts(|d| &d.client_message_id),
        uuids(|d| d.reply_to_id.unwrap_or_default()),
        uuids(|d| d.recipient.unwrap_or_default()),
        Value::from(drafts.iter().map(|d| d.pair().0).collect::<Vec<_>>()),
        Value::from(drafts.iter().map(|d| d.pair().1).collect::<Vec<_>>()),
        at.into(),
    ];
    Statement::from_sql_and_values(DbBackend::Postgres, WRITE_TOGETHER.as_str(), values)
}
