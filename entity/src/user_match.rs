//! Two users who liked each other, in canonical order (`user_low < user_high`).
//! An unmatched pair keeps its row, with `unmatched_at` set.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "matches")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_low: Uuid,
    pub user_high: Uuid,
    pub created_at: DateTimeUtc,
    pub unmatched_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
