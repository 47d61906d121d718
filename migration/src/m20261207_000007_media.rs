//! Profile photos and message attachments: one row per stored image, with the
//! stored sizes' keys. A row whose owner is gone (its user deleted, or the
//! photo deleted; its message deleted) keeps its place until its objects are
//! removed from the store, so no object is ever left without a row that
//! names it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Photos::Table)
                    .col(uuid(Photos::Id).primary_key())
                    // Null once released (deleted, or its account deleted):
                    // shown to no one, its objects removed by the sweeper.
                    .col(uuid_null(Photos::UserId))
                    .col(integer(Photos::Position))
                    .col(integer(Photos::Width))
                    .col(integer(Photos::Height))
                    .col(big_integer(Photos::Bytes))
                    .col(string_len(Photos::MimeType, 32))
                    .col(string_len(Photos::Placeholder, 64))
                    // JSON: the stored sizes, largest first.
                    .col(text(Photos::Variants))
                    // Flagged by the moderation classifier: shown to its owner only.
                    .col(boolean(Photos::Flagged).default(false))
                    .col(timestamp_with_time_zone(Photos::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Photos::Table, Photos::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_photos_user_position")
                    .table(Photos::Table)
                    .col(Photos::UserId)
                    .col(Photos::Position)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(uuid(Attachments::Id).primary_key())
                    // Null once the uploader's account is deleted.
                    .col(uuid_null(Attachments::UploaderId))
                    // Null until sent, and again once the message is deleted.
                    .col(uuid_null(Attachments::MessageId))
                    // When it was sent with a message: a sent attachment
                    // without a message is released.
                    .col(timestamp_with_time_zone_null(Attachments::UsedAt))
                    .col(integer(Attachments::Width))
                    .col(integer(Attachments::Height))
                    .col(big_integer(Attachments::Bytes))
                    .col(string_len(Attachments::MimeType, 32))
                    .col(string_len(Attachments::Placeholder, 64))
                    .col(text(Attachments::Variants))
                    .col(timestamp_with_time_zone(Attachments::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Attachments::Table, Attachments::UploaderId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Attachments::Table, Attachments::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_message")
                    .table(Attachments::Table)
                    .col(Attachments::MessageId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_uploader")
                    .table(Attachments::Table)
                    .col(Attachments::UploaderId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Attachments::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Photos::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Photos {
    Table,
    Id,
    UserId,
    Position,
    Width,
    Height,
    Bytes,
    MimeType,
    Placeholder,
    Variants,
    Flagged,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    UploaderId,
    MessageId,
    UsedAt,
    Width,
    Height,
    Bytes,
    MimeType,
    Placeholder,
    Variants,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
}
