//! A conversation: DIRECT between two users, or a group's.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// `DIRECT` or `GROUP`.
    pub kind: String,
    /// The group, for a GROUP conversation (one per group).
    pub group_id: Option<Uuid>,
    /// The pair, in canonical order, for a DIRECT conversation (one per pair).
    pub direct_low: Option<Uuid>,
    pub direct_high: Option<Uuid>,
    /// The seq of the latest message; 0 before the first.
    pub last_seq: i64,
    pub last_activity_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
