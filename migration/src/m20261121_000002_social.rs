//! The social graph: friend requests, friendships and blocks, and who may see a
//! user's friend list.
//!
//! A friendship is stored as two rows, one per direction, so "the friends of X" is
//! one index range and mutual friends are one join. Each user carries its friend
//! count, kept in the same transaction as the rows: counting a hub's thousands of
//! rows on every profile view would cost more than all the rest of the page.
//!
//! A friend request carries its pair in canonical order (`pair_low < pair_high`)
//! under a unique key: at most one pending request per pair, whichever side sent
//! it. The domain also serialises changes to a pair; the key is the last line of
//! defence.

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
                    .add_column(string_len(Users::FriendListVisibility, 16).default("FRIENDS"))
                    .to_owned(),
            )
            .await?;
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(big_integer(Users::FriendCount).default(0))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(FriendRequests::Table)
                    .col(uuid(FriendRequests::Id).primary_key())
                    .col(uuid(FriendRequests::FromUserId))
                    .col(uuid(FriendRequests::ToUserId))
                    .col(uuid(FriendRequests::PairLow))
                    .col(uuid(FriendRequests::PairHigh))
                    .col(text_null(FriendRequests::Message))
                    .col(timestamp_with_time_zone(FriendRequests::CreatedAt))
                    .foreign_key(&mut user_fk(
                        FriendRequests::Table,
                        FriendRequests::FromUserId,
                    ))
                    .foreign_key(&mut user_fk(
                        FriendRequests::Table,
                        FriendRequests::ToUserId,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "uq_friend_requests_pair",
                vec![FriendRequests::PairLow, FriendRequests::PairHigh],
                true,
            ),
            (
                "idx_friend_requests_to",
                vec![FriendRequests::ToUserId, FriendRequests::Id],
                false,
            ),
            (
                "idx_friend_requests_from",
                vec![FriendRequests::FromUserId, FriendRequests::Id],
                false,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(FriendRequests::Table);
            for column in columns {
                index.col(column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Friendships::Table)
                    .col(uuid(Friendships::UserId))
                    .col(uuid(Friendships::FriendId))
                    .col(timestamp_with_time_zone(Friendships::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Friendships::UserId)
                            .col(Friendships::FriendId),
                    )
                    .foreign_key(&mut user_fk(Friendships::Table, Friendships::UserId))
                    .foreign_key(&mut user_fk(Friendships::Table, Friendships::FriendId))
                    .to_owned(),
            )
            .await?;
        // Deleting an account cascades through the reverse rows by this index.
        manager
            .create_index(
                Index::create()
                    .name("idx_friendships_friend")
                    .table(Friendships::Table)
                    .col(Friendships::FriendId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Blocks::Table)
                    .col(uuid(Blocks::BlockerId))
                    .col(uuid(Blocks::BlockedId))
                    .col(timestamp_with_time_zone(Blocks::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Blocks::BlockerId)
                            .col(Blocks::BlockedId),
                    )
                    .foreign_key(&mut user_fk(Blocks::Table, Blocks::BlockerId))
                    .foreign_key(&mut user_fk(Blocks::Table, Blocks::BlockedId))
                    .to_owned(),
            )
            .await?;
        // "Who blocked the viewer" is asked on every lookup of another user.
        manager
            .create_index(
                Index::create()
                    .name("idx_blocks_blocked")
                    .table(Blocks::Table)
                    .col(Blocks::BlockedId)
                    .col(Blocks::BlockerId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Blocks::Table.into_iden(),
            Friendships::Table.into_iden(),
            FriendRequests::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::FriendListVisibility)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::FriendCount)
                    .to_owned(),
            )
            .await
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
    FriendListVisibility,
    FriendCount,
}

#[derive(DeriveIden)]
enum FriendRequests {
    Table,
    Id,
    FromUserId,
    ToUserId,
    PairLow,
    PairHigh,
    Message,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Friendships {
    Table,
    UserId,
    FriendId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Blocks {
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
}
