//! Schema migrations, one module per change. A landed migration is never edited:
//! a change to the schema is a new module appended to `Migrator::migrations`.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_accounts;
mod m20261121_000002_social;
mod m20261121_000003_groups;
mod m20261121_000004_chat;
mod m20261121_000005_discovery;
mod m20261206_000006_presence_visibility;
mod m20261207_000007_media;
mod m20261207_000008_identities;
mod m20261207_000009_outbox;
mod m20261207_000010_webhook_deliveries;
mod m20261207_000011_outbox_pending;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_accounts::Migration),
            Box::new(m20261121_000002_social::Migration),
            Box::new(m20261121_000003_groups::Migration),
            Box::new(m20261121_000004_chat::Migration),
            Box::new(m20261121_000005_discovery::Migration),
            Box::new(m20261206_000006_presence_visibility::Migration),
            Box::new(m20261207_000007_media::Migration),
            Box::new(m20261207_000008_identities::Migration),
            Box::new(m20261207_000009_outbox::Migration),
            Box::new(m20261207_000010_webhook_deliveries::Migration),
            Box::new(m20261207_000011_outbox_pending::Migration),
        ]
    }
}
