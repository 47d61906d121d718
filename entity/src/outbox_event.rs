//! One domain event waiting in the outbox to be relayed, or relayed and
//! kept until pruned.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    /// Insertion order: commit order on SQLite; on PostgreSQL, among rows
    /// whose transactions have all ended.
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// The event's id (UUIDv7): `Nats-Msg-Id`, so a re-publish is dropped.
    #[sea_orm(unique)]
    pub id: Uuid,
    pub event_type: String,
    pub version: i32,
    pub occurred_at: DateTimeUtc,
    pub actor: Option<Uuid>,
    /// JSON.
    pub data: String,
    /// PostgreSQL: the writing transaction's id.
    pub tx_id: Option<i64>,
    pub published_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
