//! A profile photo: its stored sizes' keys and what clients are told of it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "photos")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Null once released: shown to no one, its objects about to be removed.
    pub user_id: Option<Uuid>,
    /// 0, 1, 2… in the order the owner chose.
    pub position: i32,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    pub mime_type: String,
    pub placeholder: String,
    /// JSON: the stored sizes, largest first.
    pub variants: String,
    /// Flagged by the moderation classifier: shown to its owner only.
    pub flagged: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
