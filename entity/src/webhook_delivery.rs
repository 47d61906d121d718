//! One event owed to one webhook URL: pending until the receiver answers
//! 2xx (then deleted), or dead after too many failures until replayed.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// Creation order: the order the relay handed the events on.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The outbox event's id: `Kith-Event-Id`.
    pub event_id: Uuid,
    pub url: String,
    /// Tries so far that got no 2xx.
    pub attempts: i32,
    /// When the next try is due, or the lease of one in flight ends.
    pub next_attempt_at: DateTimeUtc,
    /// Why the last try failed: a status or a short reason.
    pub last_error: Option<String>,
    /// Set once tries ran out: a dead letter.
    pub dead_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
