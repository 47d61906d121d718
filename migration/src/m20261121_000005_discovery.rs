//! Discovery: who a user wants to see (their preferences, kept on their row so
//! the candidate query reads one table), their swipes, and their matches.
//!
//! - A swipe is one row per (swiper, target): a later swipe replaces it, so a
//!   pass can turn into a like once its cooldown is over.
//! - A match is one row per pair in canonical order (`user_low < user_high`)
//!   under a unique key: concurrent mutual likes make exactly one. Unmatching
//!   keeps the row with `unmatched_at` set, so the pair never matches again
//!   and their direct conversation stays closed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for mut column in [
            boolean(Users::Discoverable).default(true).to_owned(),
            integer(Users::DiscoveryMinAge).default(18).to_owned(),
            integer(Users::DiscoveryMaxAge).default(99).to_owned(),
            // A bit set: FEMALE 1, MALE 2, NONBINARY 4.
            integer(Users::DiscoveryGenders).default(7).to_owned(),
            integer(Users::DiscoveryMaxDistanceKm)
                .default(50)
                .to_owned(),
            // Null until the user sets their preferences themselves.
            timestamp_with_time_zone_null(Users::DiscoveryUpdatedAt),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // The candidate query: one gender at a time, a latitude band, then
        // longitude and birthdate checked in the index before any row is read.
        manager
            .create_index(
                Index::create()
                    .name("idx_users_discovery")
                    .table(Users::Table)
                    .col(Users::Gender)
                    .col(Users::Latitude)
                    .col(Users::Longitude)
                    .col(Users::Birthdate)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Swipes::Table)
                    .col(uuid(Swipes::SwiperId))
                    .col(uuid(Swipes::TargetId))
                    .col(string_len(Swipes::Kind, 16))
                    .col(timestamp_with_time_zone(Swipes::CreatedAt))
                    .primary_key(Index::create().col(Swipes::SwiperId).col(Swipes::TargetId))
                    .foreign_key(&mut user_fk(Swipes::Table, Swipes::SwiperId))
                    .foreign_key(&mut user_fk(Swipes::Table, Swipes::TargetId))
                    .to_owned(),
            )
            .await?;
        // "Who liked the viewer", and the cascade when a target's account goes.
        manager
            .create_index(
                Index::create()
                    .name("idx_swipes_target")
                    .table(Swipes::Table)
                    .col(Swipes::TargetId)
                    .col(Swipes::SwiperId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Matches::Table)
                    .col(uuid(Matches::Id).primary_key())
                    .col(uuid(Matches::UserLow))
                    .col(uuid(Matches::UserHigh))
                    .col(timestamp_with_time_zone(Matches::CreatedAt))
                    .col(timestamp_with_time_zone_null(Matches::UnmatchedAt))
                    .foreign_key(&mut user_fk(Matches::Table, Matches::UserLow))
                    .foreign_key(&mut user_fk(Matches::Table, Matches::UserHigh))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "uq_matches_pair",
                vec![Matches::UserLow, Matches::UserHigh],
                true,
            ),
            // The other half of "the viewer's matches" (the key above serves
            // `user_low`), and the cascade when an account goes.
            ("idx_matches_high", vec![Matches::UserHigh], false),
        ] {
            let mut index = Index::create();
            index.name(name).table(Matches::Table);
            for column in columns {
                index.col(column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Matches::Table.into_iden(), Swipes::Table.into_iden()] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_users_discovery")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Users::Discoverable,
            Users::DiscoveryMinAge,
            Users::DiscoveryMaxAge,
            Users::DiscoveryGenders,
            Users::DiscoveryMaxDistanceKm,
            Users::DiscoveryUpdatedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

fn user_fk(table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Gender,
    Latitude,
    Longitude,
    Birthdate,
    Discoverable,
    DiscoveryMinAge,
    DiscoveryMaxAge,
    DiscoveryGenders,
    DiscoveryMaxDistanceKm,
    DiscoveryUpdatedAt,
}

#[derive(DeriveIden)]
enum Swipes {
    Table,
    SwiperId,
    TargetId,
    Kind,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Matches {
    Table,
    Id,
    UserLow,
    UserHigh,
    CreatedAt,
    UnmatchedAt,
}
