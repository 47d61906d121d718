//! The events owed to webhook URLs (`webhook_deliveries`): leased to a
//! dispatcher when due, deleted once delivered, put off after a failure,
//! dead after the last one; and, for operators, the dead letters listed
//! and replayed, and the counts `/readyz` and the metrics report.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{outbox_event, webhook_delivery};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::Expr,
};
use serde::Serialize;
use uuid::Uuid;

use crate::{error::AppResult, infra::sql};

/// One delivery a dispatcher has leased.
#[derive(Debug)]
pub(super) struct Claimed {
    pub id: i64,
    pub event_id: Uuid,
    /// Failed tries before this one.
    pub attempts: i32,
}

/// Leases up to `limit` due deliveries of `url` until `lease_until`, oldest
/// first. On PostgreSQL rows another dispatcher is leasing at this moment
/// are skipped, not waited for, so replicas share the due rows.
pub(super) async fn claim(
    db: &impl ConnectionTrait,
    url: &str,
    limit: u64,
    lease_until: DateTime<Utc>,
) -> anyhow::Result<Vec<Claimed>> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        // One process writes an SQLite file at a time.
        ""
    };
    let query = format!(
        "UPDATE webhook_deliveries SET next_attempt_at = ? \
         WHERE id IN (SELECT id FROM webhook_deliveries \
           WHERE dead_at IS NULL AND url = ? AND next_attempt_at <= ? \
           ORDER BY id LIMIT ? {lock}) \
         RETURNING id, event_id, attempts"
    );
    let rows = db
        .query_all_raw(sql::statement(
            backend,
            &query,
            vec![
                lease_until.into(),
                url.into(),
                Utc::now().into(),
                i64::try_from(limit).unwrap_or(i64::MAX).into(),
            ],
        ))
        .await?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            Ok(Claimed {
                id: row.try_get("", "id")?,
                event_id: row.try_get("", "event_id")?,
                attempts: row.try_get("", "attempts")?,
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    // RETURNING promises no order.
    claimed.sort_by_key(|delivery| delivery.id);
    Ok(claimed)
}

/// The outbox rows of `ids` (pruning keeps every row still owed).
pub(super) async fn events(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> anyhow::Result<HashMap<Uuid, outbox_event::Model>> {
    Ok(outbox_event::Entity::find()
        .filter(outbox_event::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|row| (row.id, row))
        .collect())
}

pub(super) async fn delivered(db: &impl ConnectionTrait, id: i64) -> anyhow::Result<()> {
    webhook_delivery::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// Records a failed try: tried again at `retry_at`, or, with `None`, dead.
pub(super) async fn failed(
    db: &impl ConnectionTrait,
    delivery: &Claimed,
    reason: &str,
    retry_at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut update = webhook_delivery::Entity::update_many()
        .col_expr(
            webhook_delivery::Column::Attempts,
            Expr::value(delivery.attempts.saturating_add(1)),
        )
        .col_expr(webhook_delivery::Column::LastError, Expr::value(reason))
        .filter(webhook_delivery::Column::Id.eq(delivery.id));
    update = match retry_at {
        Some(at) => update.col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(at)),
        None => update.col_expr(webhook_delivery::Column::DeadAt, Expr::value(now)),
    };
    update.exec(db).await?;
    Ok(())
}

/// Deliveries waiting (due or put off) and dead ones, over every URL.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct WebhookBacklog {
    pub pending: u64,
    pub dead: u64,
}

impl WebhookBacklog {
    pub async fn read(db: &impl ConnectionTrait) -> AppResult<Self> {
        let counts = webhook_delivery::Entity::find()
            .select_only()
            .column_as(
                Expr::cust("CASE WHEN dead_at IS NULL THEN 0 ELSE 1 END"),
                "dead",
            )
            .column_as(Expr::cust("COUNT(*)"), "n")
            .group_by(Expr::cust("CASE WHEN dead_at IS NULL THEN 0 ELSE 1 END"))
            .into_tuple::<(i32, i64)>()
            .all(db)
            .await?;
        let mut backlog = Self::default();
        for (dead, n) in counts {
            let n = u64::try_from(n).unwrap_or(0);
            if dead == 1 {
                backlog.dead = n;
            } else {
                backlog.pending = n;
            }
        }
        Ok(backlog)
    }
}

/// A delivery whose tries ran out.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub event_id: Uuid,
    /// `None` only if the event left the outbox some other way.
    pub event_type: Option<String>,
    pub url: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub failed_at: DateTime<Utc>,
}

/// Every dead letter, oldest failure first: what `kith events failed` lists.
pub async fn dead_letters(db: &impl ConnectionTrait) -> anyhow::Result<Vec<DeadLetter>> {
    let dead = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::DeadAt.is_not_null())
        .order_by_asc(webhook_delivery::Column::DeadAt)
        .order_by_asc(webhook_delivery::Column::Id)
        .all(db)
        .await?;
    let ids = dead.iter().map(|delivery| delivery.event_id).collect();
    let types: HashMap<Uuid, String> = outbox_event::Entity::find()
        .select_only()
        .column(outbox_event::Column::Id)
        .column(outbox_event::Column::EventType)
        .filter(outbox_event::Column::Id.is_in::<Uuid, Vec<Uuid>>(ids))
        .into_tuple::<(Uuid, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(dead
        .into_iter()
        .map(|delivery| DeadLetter {
            event_id: delivery.event_id,
            event_type: types.get(&delivery.event_id).cloned(),
            url: delivery.url,
            attempts: delivery.attempts,
            last_error: delivery.last_error,
            failed_at: delivery.dead_at.unwrap_or(delivery.created_at),
        })
        .collect())
}

/// Which dead letters to replay.
#[derive(Clone, Copy, Debug)]
pub enum Replay {
    /// Every dead delivery of one event (one per URL it failed at).
    Event(Uuid),
    All,
}

/// Puts dead letters back to pending, due now with their tries counted
/// afresh; returns how many. A running dispatcher picks them up at its
/// next look.
pub async fn replay(db: &impl ConnectionTrait, which: Replay) -> anyhow::Result<u64> {
    let mut update = webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Attempts, Expr::value(0))
        .col_expr(
            webhook_delivery::Column::NextAttemptAt,
            Expr::value(Utc::now()),
        )
        .col_expr(
            webhook_delivery::Column::DeadAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(webhook_delivery::Column::DeadAt.is_not_null());
    if let Replay::Event(id) = which {
        update = update.filter(webhook_delivery::Column::EventId.eq(id));
    }
    Ok(update.exec(db).await?.rows_affected)
}
