//! Sign-in identities other than the password: a verified phone, a Telegram
//! user, a Facebook user, each linked to one account; the one-time codes that
//! SMS sign-in sends; and how each session began.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Identities::Table)
                    .col(uuid(Identities::Id).primary_key())
                    .col(uuid(Identities::UserId))
                    // `phone`, `telegram` or `facebook`.
                    .col(string_len(Identities::Provider, 16))
                    // The provider's id of the person: an E.164 number, a
                    // Telegram user id, a Facebook app-scoped user id.
                    .col(string_len(Identities::Subject, 64))
                    // What the provider said of them when last used.
                    .col(string_len_null(Identities::DisplayName, 128))
                    .col(string_len_null(Identities::Username, 64))
                    .col(string_len_null(Identities::PhotoUrl, 512))
                    .col(timestamp_with_time_zone(Identities::CreatedAt))
                    .col(timestamp_with_time_zone(Identities::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Identities::Table, Identities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One account per provider's person…
        manager
            .create_index(
                Index::create()
                    .name("identities_provider_subject_key")
                    .table(Identities::Table)
                    .col(Identities::Provider)
                    .col(Identities::Subject)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // …and one of each provider per account.
        manager
            .create_index(
                Index::create()
                    .name("identities_user_provider_key")
                    .table(Identities::Table)
                    .col(Identities::UserId)
                    .col(Identities::Provider)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SmsCodes::Table)
                    .col(string_len(SmsCodes::Phone, 16).primary_key())
                    // SHA-256 of the code keyed by the server's secret: a
                    // leaked table does not give the codes away.
                    .col(string_len(SmsCodes::CodeHash, 64))
                    .col(integer(SmsCodes::AttemptsLeft))
                    .col(timestamp_with_time_zone(SmsCodes::ExpiresAt))
                    .col(timestamp_with_time_zone(SmsCodes::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Expired codes are deleted by range of expiry.
        manager
            .create_index(
                Index::create()
                    .name("idx_sms_codes_expires_at")
                    .table(SmsCodes::Table)
                    .col(SmsCodes::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(string_len(Sessions::Method, 16).default("password"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::Method)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(SmsCodes::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Identities::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Identities {
    Table,
    Id,
    UserId,
    Provider,
    Subject,
    DisplayName,
    Username,
    PhotoUrl,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum SmsCodes {
    Table,
    Phone,
    CodeHash,
    AttemptsLeft,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Method,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
