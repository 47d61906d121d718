//! The outbox: each domain change that services outside kith care about,
//! written in the change's own transaction and relayed from here (to NATS
//! JetStream), so an event exists if and only if its change committed.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // On PostgreSQL each row records the transaction that wrote it, so
        // the relay takes only rows of transactions older than every one
        // still running: a row with a smaller `seq` can no longer commit
        // after a larger one was published. SQLite's writers run one at a
        // time, so there `seq` order is commit order already.
        let mut tx_id = big_integer_null(Outbox::TxId);
        if manager.get_database_backend() == DbBackend::Postgres {
            tx_id.default(Expr::cust("(pg_current_xact_id()::text::bigint)"));
        }
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(big_pk_auto(Outbox::Seq))
                    .col(uuid_uniq(Outbox::Id))
                    // Dotted, lower case: `user.registered`.
                    .col(string_len(Outbox::EventType, 64))
                    .col(integer(Outbox::Version))
                    .col(timestamp_with_time_zone(Outbox::OccurredAt))
                    .col(uuid_null(Outbox::Actor))
                    // JSON: ids and the changed fields.
                    .col(text(Outbox::Data))
                    .col(tx_id)
                    .col(timestamp_with_time_zone_null(Outbox::PublishedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_published_at_seq")
                    .table(Outbox::Table)
                    .col(Outbox::PublishedAt)
                    .col(Outbox::Seq)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Seq,
    Id,
    EventType,
    Version,
    OccurredAt,
    Actor,
    Data,
    TxId,
    PublishedAt,
}
