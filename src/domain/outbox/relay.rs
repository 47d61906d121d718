//! The relay: publishes committed outbox rows to NATS JetStream (when
//! configured) in `seq` order, hands them on to the webhook URLs (when
//! configured) in the transaction that marks them published, and prunes
//! old ones. One relay publishes at a time (a transaction-scoped advisory
//! lock on PostgreSQL; SQLite serves one process), so replicas share the
//! work without doing it twice and per-user, per-conversation order holds.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use entity::outbox_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement, TransactionTrait, sea_query::Expr,
};
use tokio::sync::Notify;

use super::{Envelope, WebhookTargets};
use crate::infra::{
    db::Db,
    event_sink::{EventSink, Outgoing},
};

/// Rows published per transaction.
const BATCH: u64 = 256;
/// How often an idle relay looks for new rows.
const POLL: Duration = Duration::from_millis(100);
/// How soon a relay that just published looks again: events come in runs,
/// and waiting the idle poll made half of it the lag (p50 60 ms at 1,000
/// messages a second, `bench/README.md`).
const BUSY_POLL: Duration = Duration::from_millis(10);
/// How long a relay waits after a failure (the sink or the database away).
const BACKOFF: Duration = Duration::from_secs(1);
/// How often the backlog gauges are brought up to date.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often published rows past their retention are deleted (more often
/// when the retention is shorter).
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The advisory lock only one relay holds at a time (any constant every
/// replica agrees on).
const RELAY_LOCK: i64 = 0x6b69_7468_6f75_7462; // "kithoutb"

pub struct Relay {
    db: Db,
    /// NATS JetStream, when configured.
    sink: Option<Arc<dyn EventSink>>,
    /// The webhook URLs, when configured, and this replica's dispatcher to
    /// wake when events are handed on to them.
    webhooks: Option<(WebhookTargets, Arc<Notify>)>,
    retention: Duration,
}

impl Relay {
    /// A relay to NATS JetStream.
    pub fn new(db: Db, sink: Arc<dyn EventSink>, retention: Duration) -> Self {
        Self {
            db,
            sink: Some(sink),
            webhooks: None,
            retention,
        }
    }

    /// A relay for webhooks alone: rows are marked published once handed
    /// on.
    pub fn without_nats(db: Db, retention: Duration) -> Self {
        Self {
            db,
            sink: None,
            webhooks: None,
            retention,
        }
    }

    /// Hands each relayed event on to `targets`, and wakes `dispatcher`
    /// when it has.
    pub fn with_webhooks(self, targets: WebhookTargets, dispatcher: Arc<Notify>) -> Self {
        Self {
            webhooks: Some((targets, dispatcher)),
            ..self
        }
    }

    /// Runs until the app stops.
    pub async fn run(self) {
        let mut last_prune = tokio::time::Instant::now();
        let prune_every = PRUNE_EVERY.min(self.retention.max(Duration::from_secs(1)));
        let mut last_report = tokio::time::Instant::now();
        loop {
            match self.relay_batch().await {
                Ok(published) if published as u64 == BATCH => continue,
                Ok(0) => tokio::time::sleep(POLL).await,
                Ok(_) => tokio::time::sleep(BUSY_POLL).await,
                Err(err) => {
                    tracing::warn!(error = %err, "outbox relay: retrying");
                    tokio::time::sleep(BACKOFF).await;
                }
            }
            if last_report.elapsed() >= REPORT_EVERY {
                last_report = tokio::time::Instant::now();
                if let Ok(backlog) = super::Outbox::backlog(self.db.primary()).await {
                    metrics::gauge!("kith_outbox_backlog").set(backlog.waiting as f64);
                    metrics::gauge!("kith_outbox_lag_seconds").set(backlog.lag_secs);
                }
            }
            if last_prune.elapsed() >= prune_every {
                last_prune = tokio::time::Instant::now();
                if let Err(err) = self.prune().await {
                    tracing::warn!(error = %err, "outbox relay: pruning failed");
                }
            }
        }
    }

    /// Publishes the next committed rows, in order, and hands them on to
    /// the webhooks; returns how many. A failure part-way keeps what was
    /// published marked and handed on, and the rest waits: a row is
    /// published at least once (JetStream drops a second publish of the
    /// same id), and owed to each webhook URL once.
    pub async fn relay_batch(&self) -> anyhow::Result<usize> {
        let db = self.db.primary();
        let pending = || {
            outbox_event::Entity::find()
                .filter(outbox_event::Column::PublishedAt.is_null())
                .order_by_asc(outbox_event::Column::Seq)
                .limit(BATCH)
        };
        if db.get_database_backend() != DbBackend::Postgres {
            // SQLite serves one process, with one relay, and its writers
            // commit one at a time: no lock, and no transaction held while
            // publishing (a deferred one could not then turn into a write).
            let rows = pending().all(db).await?;
            let (published, failure) = self.publish(&rows).await;
            if published > 0 {
                self.settle(db.begin().await?, &rows[..published]).await?;
            }
            return failure.map_or(Ok(published), Err);
        }
        let txn = db.begin().await?;
        let locked = txn
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                [RELAY_LOCK.into()],
            ))
            .await?
            .map(|row| row.try_get::<bool>("", "locked"))
            .transpose()?
            .unwrap_or(false);
        if !locked {
            return Ok(0);
        }
        // Only rows of transactions older than every one still running, and
        // only those before the first pending row that is not (both in one
        // statement, so of one snapshot). A transaction's id comes with its
        // first write or row lock, not with its row's seq: a batch of sends
        // that share-locked its users early may write a conversation's
        // message 9 after another batch, with a later id, committed message
        // 8; skipping 8 while a third transaction keeps it from being ready
        // would publish 9 first. Stopping at it keeps commit order for each
        // conversation, group and user.
        // Both read the pending rows through their partial index
        // (`idx_outbox_pending`), however many were published before.
        let rows = pending()
            .filter(Expr::cust(
                "tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
            ))
            .filter(Expr::cust(
                "seq < COALESCE((SELECT MIN(o.seq) FROM outbox o \
                 WHERE o.published_at IS NULL \
                 AND o.tx_id >= pg_snapshot_xmin(pg_current_snapshot())::text::bigint), \
                 9223372036854775807)",
            ))
            .all(&txn)
            .await?;
        let (published, failure) = self.publish(&rows).await;
        self.settle(txn, &rows[..published]).await?;
        failure.map_or(Ok(published), Err)
    }

    /// Publishes `rows` to JetStream in order, stopping at the first
    /// failure; how many were published (all of them without NATS), and
    /// the failure.
    async fn publish(&self, rows: &[outbox_event::Model]) -> (usize, Option<anyhow::Error>) {
        let Some(sink) = &self.sink else {
            return (rows.len(), None);
        };
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            match Envelope::payload(row) {
                Ok(payload) => events.push(Outgoing {
                    subject: format!("kith.{}", row.event_type),
                    id: row.id.to_string(),
                    payload,
                }),
                // Published up to here; the rest waits.
                Err(err) => {
                    let (published, failure) = sink.publish_all(events).await;
                    return (published, failure.or(Some(err.into())));
                }
            }
        }
        sink.publish_all(events).await
    }

    /// In `txn`: owes the `published` rows to the webhook URLs and marks
    /// them published; once that commits, wakes this replica's dispatcher.
    async fn settle(
        &self,
        txn: DatabaseTransaction,
        published: &[outbox_event::Model],
    ) -> anyhow::Result<()> {
        if let Some((targets, _)) = &self.webhooks {
            targets.hand_on(&txn, published).await?;
        }
        mark_published(&txn, published).await?;
        txn.commit().await?;
        if let Some((_, dispatcher)) = &self.webhooks
            && !published.is_empty()
        {
            dispatcher.notify_waiters();
        }
        Ok(())
    }

    /// Deletes published events past their retention, but none still owed
    /// to a webhook URL, pending or dead: a dead letter stays replayable.
    async fn prune(&self) -> anyhow::Result<()> {
        let before = Utc::now() - self.retention;
        outbox_event::Entity::delete_many()
            .filter(outbox_event::Column::PublishedAt.lt(before))
            .filter(Expr::cust(
                "NOT EXISTS (SELECT 1 FROM webhook_deliveries \
                 WHERE webhook_deliveries.event_id = outbox.id)",
            ))
            .exec(self.db.primary())
            .await?;
        Ok(())
    }
}

async fn mark_published(
    db: &impl ConnectionTrait,
    rows: &[outbox_event::Model],
) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    outbox_event::Entity::update_many()
        .col_expr(outbox_event::Column::PublishedAt, Expr::value(Utc::now()))
        .filter(outbox_event::Column::Seq.is_in(rows.iter().map(|row| row.seq)))
        .exec(db)
        .await?;
    Ok(())
}
