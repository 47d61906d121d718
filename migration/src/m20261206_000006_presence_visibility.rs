//! Who may see a user's presence and `lastSeenAt`: `EVERYONE`, `FRIENDS` (the
//! default, for existing accounts too: presence used to go to anyone, signed
//! out included, which told a blocked user when the blocker was about) or
//! `ONLY_ME`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(string_len(Users::PresenceVisibility, 16).default("FRIENDS"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::PresenceVisibility)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    PresenceVisibility,
}
