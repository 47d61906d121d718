//! An image uploaded for a message: unused until sent, then its message's.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attachments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Null once the uploader's account is deleted.
    pub uploader_id: Option<Uuid>,
    /// Null until sent, and again once the message is deleted.
    pub message_id: Option<Uuid>,
    /// When it was sent: a sent attachment without a message is released.
    pub used_at: Option<DateTimeUtc>,
    pub width: i32,
    pub height: i32,
    pub bytes: i64,
    pub mime_type: String,
    pub placeholder: String,
    /// JSON: the stored sizes, largest first.
    pub variants: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
