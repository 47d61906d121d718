//! Webhook deliveries: one row per event and URL from the moment the relay
//! hands the event on until the receiver answers 2xx (then it is deleted),
//! or until it has failed too often (then it stays, dead, for an operator
//! to list and replay). Replicas share the due rows by leasing them.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    // The outbox row's id (not its seq): what `Kith-Event-Id`
                    // carries and `kith events replay` takes.
                    .col(uuid(WebhookDeliveries::EventId))
                    .col(string_len(WebhookDeliveries::Url, 2048))
                    .col(integer(WebhookDeliveries::Attempts).default(0))
                    // When the next try is due; while one is in flight, when
                    // its lease ends (a replica that died mid-way leaves it
                    // to the others then).
                    .col(timestamp_with_time_zone(WebhookDeliveries::NextAttemptAt))
                    .col(string_len_null(WebhookDeliveries::LastError, 256))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::DeadAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // A relay that hands an event on twice (after a failure part-way)
        // adds no second delivery; also how pruning the outbox finds the
        // events still owed to a receiver.
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_event_id_url")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EventId)
                    .col(WebhookDeliveries::Url)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The dispatchers' question (live ones of a URL that are due), and
        // the counts of pending and dead ones.
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::DeadAt)
                    .col(WebhookDeliveries::Url)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    EventId,
    Url,
    Attempts,
    NextAttemptAt,
    LastError,
    DeadAt,
    CreatedAt,
}
