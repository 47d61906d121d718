//! A message, numbered gaplessly within its conversation.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// 1, 2, 3… within the conversation, with no gaps.
    pub seq: i64,
    /// Null once the sender's account is deleted.
    pub sender_id: Option<Uuid>,
    pub body: String,
    /// The sender's own id for the message: a retry with the same one finds it.
    pub client_message_id: String,
    pub reply_to_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub edited_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
