//! `swiper_id`'s latest swipe on `target_id`: `LIKE`, `SUPER_LIKE` or `PASS`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "swipes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub swiper_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub target_id: Uuid,
    pub kind: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
