//! A group: a named circle of members with one owner.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "groups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// `name` in lower case, for search.
    pub name_key: String,
    pub description: Option<String>,
    /// `PUBLIC` or `PRIVATE`.
    pub visibility: String,
    /// `OPEN`, `APPROVAL` or `INVITE_ONLY`.
    pub join_policy: String,
    /// Members, the owner included; kept with the member rows in one transaction.
    pub member_count: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
