//! Domain events for services outside kith: each change others care about
//! appends its event to the `outbox` table in the change's own
//! transaction, so an event exists if and only if its change committed; a
//! relay (`relay`) publishes them in order to NATS JetStream and hands them
//! on to the webhook URLs (`targets`), then marks them published; a
//! dispatcher (`dispatcher`) posts each event owed to a URL
//! (`deliveries`) until it is delivered or dead. With no sink configured
//! nothing is written.
//!
//! Every event goes out in one envelope, `{id, type, version, occurredAt,
//! actor, data}`; `data` holds ids and what changed, never a password
//! hash, a token or a code. `docs/events.md` lists the types.

use chrono::Utc;
use entity::outbox_event;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde::Serialize;
use uuid::Uuid;

use crate::error::AppResult;

mod deliveries;
mod dispatcher;
mod relay;
mod targets;

pub use deliveries::{DeadLetter, Replay, WebhookBacklog, dead_letters, replay};
pub use dispatcher::Dispatcher;
pub use relay::Relay;
pub use targets::WebhookTargets;

/// Appends events when a sink will relay them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outbox {
    enabled: bool,
    webhooks: bool,
}

/// An event as a domain states it: its type and version, who did it, and
/// its data.
pub struct DomainEvent {
    /// Dotted, lower case: `user.registered`.
    pub kind: &'static str,
    pub version: i32,
    pub actor: Option<Uuid>,
    pub data: serde_json::Value,
}

impl DomainEvent {
    pub fn new(kind: &'static str, actor: Option<Uuid>, data: impl Serialize) -> Self {
        Self {
            kind,
            version: 1,
            actor,
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Events not yet relayed.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Backlog {
    pub waiting: u64,
    /// How long the oldest waiting event has waited; 0 with none.
    pub lag_secs: f64,
}

/// What consumers receive.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<'a> {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub version: i32,
    pub occurred_at: chrono::DateTime<Utc>,
    pub actor: Option<Uuid>,
    pub data: serde_json::Value,
}

impl<'a> Envelope<'a> {
    /// An outbox row as consumers receive it.
    pub fn of(row: &'a outbox_event::Model) -> Self {
        Self {
            id: row.id,
            kind: &row.event_type,
            version: row.version,
            occurred_at: row.occurred_at,
            actor: row.actor,
            data: serde_json::from_str(&row.data).unwrap_or(serde_json::Value::Null),
        }
    }

    /// The JSON every sink carries: the JetStream message's payload, the
    /// webhook's body.
    pub fn payload(row: &outbox_event::Model) -> serde_json::Result<bytes::Bytes> {
        serde_json::to_vec(&Envelope::of(row)).map(bytes::Bytes::from)
    }
}

impl Outbox {
    /// Writes events only when `enabled` (a sink is configured): with none,
    /// the outbox costs nothing.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            webhooks: false,
        }
    }

    /// Writes events for webhooks too (whether or not NATS is configured):
    /// `/readyz` then reports their deliveries.
    pub fn with_webhooks(self) -> Self {
        Self {
            enabled: true,
            webhooks: true,
        }
    }

    pub fn is_enabled(self) -> bool {
        self.enabled
    }

    pub fn has_webhooks(self) -> bool {
        self.webhooks
    }

    /// How many events wait to be relayed, and how long the oldest has
    /// waited: what `/readyz` and the metrics report.
    pub async fn backlog(db: &impl ConnectionTrait) -> AppResult<Backlog> {
        use sea_orm::{
            ColumnTrait, QueryFilter, QuerySelect,
            sea_query::{Expr, Func},
        };
        let (waiting, oldest) = outbox_event::Entity::find()
            .select_only()
            .column_as(
                Expr::from(Func::count(Expr::col(outbox_event::Column::Seq))),
                "waiting",
            )
            .column_as(
                Expr::from(Func::min(Expr::col(outbox_event::Column::OccurredAt))),
                "oldest",
            )
            .filter(outbox_event::Column::PublishedAt.is_null())
            .into_tuple::<(i64, Option<chrono::DateTime<Utc>>)>()
            .one(db)
            .await?
            .unwrap_or((0, None));
        Ok(Backlog {
            waiting: u64::try_from(waiting).unwrap_or(0),
            lag_secs: oldest.map_or(0.0, |at| {
                (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
            }),
        })
    }

    /// Appends `event` through `db`, which is the change's transaction.
    pub async fn append(self, db: &impl ConnectionTrait, event: DomainEvent) -> AppResult<()> {
        self.append_all(db, [event]).await
    }

    /// Appends `events` in their order, in one statement: a batch of sends
    /// states its messages together.
    pub async fn append_all(
        self,
        db: &impl ConnectionTrait,
        events: impl IntoIterator<Item = DomainEvent>,
    ) -> AppResult<()> {
        if !self.enabled {
            return Ok(());
        }
        let occurred_at = Utc::now();
        let rows: Vec<_> = events
            .into_iter()
            .map(|event| outbox_event::ActiveModel {
                id: Set(Uuid::now_v7()),
                event_type: Set(event.kind.to_owned()),
                version: Set(event.version),
                occurred_at: Set(occurred_at),
                actor: Set(event.actor),
                data: Set(event.data.to_string()),
                // PostgreSQL fills it in (the column's default).
                ..Default::default()
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        outbox_event::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
        Ok(())
    }
}
