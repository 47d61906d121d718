//! Groups: the groups themselves, their members with roles, invitations and join
//! requests.
//!
//! Each group carries its member count, kept in the same transaction as the
//! member rows: the count is shown on every group card and is what the member cap
//! is checked against. Every change to a group's membership first locks the
//! group's row, so the cap and "exactly one owner" hold under concurrent joins;
//! the partial unique index on owners is the last line of defence.
//!
//! Member rows have their own time-ordered id, so "members in join order" is one
//! index range with a plain keyset cursor.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Groups::Table)
                    .col(uuid(Groups::Id).primary_key())
                    .col(string_len(Groups::Name, 64))
                    // The name folded to lower case: what search matches and sorts.
                    // Text, as folding can lengthen a name ('İ' is two characters).
                    .col(text(Groups::NameKey))
                    .col(text_null(Groups::Description))
                    .col(string_len(Groups::Visibility, 16))
                    .col(string_len(Groups::JoinPolicy, 16))
                    .col(big_integer(Groups::MemberCount).default(0))
                    .col(timestamp_with_time_zone(Groups::CreatedAt))
                    .col(timestamp_with_time_zone(Groups::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_groups_name_key")
                    .table(Groups::Table)
                    .col(Groups::NameKey)
                    .col(Groups::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(GroupMembers::Table)
                    .col(uuid(GroupMembers::Id).primary_key())
                    .col(uuid(GroupMembers::GroupId))
                    .col(uuid(GroupMembers::UserId))
                    .col(string_len(GroupMembers::Role, 16))
                    .col(timestamp_with_time_zone(GroupMembers::JoinedAt))
                    .foreign_key(&mut group_fk(GroupMembers::Table, GroupMembers::GroupId))
                    .foreign_key(&mut user_fk(GroupMembers::Table, GroupMembers::UserId))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "uq_group_members_group_user",
                vec![GroupMembers::GroupId, GroupMembers::UserId],
                true,
            ),
            // Members in join order, optionally by role.
            (
                "idx_group_members_group_order",
                vec![GroupMembers::GroupId, GroupMembers::Id],
                false,
            ),
            // A user's groups.
            (
                "idx_group_members_user",
                vec![GroupMembers::UserId, GroupMembers::Id],
                false,
            ),
        ] {
            manager
                .create_index(index(name, GroupMembers::Table, columns, unique))
                .await?;
        }
        // Exactly one owner per group: the domain keeps it, this index enforces it.
        // The same partial-index syntax works on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX uq_group_members_one_owner \
                 ON group_members (group_id) WHERE role = 'OWNER'",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(GroupInvitations::Table)
                    .col(uuid(GroupInvitations::Id).primary_key())
                    .col(uuid(GroupInvitations::GroupId))
                    .col(uuid(GroupInvitations::InviterId))
                    .col(uuid(GroupInvitations::InviteeId))
                    .col(timestamp_with_time_zone(GroupInvitations::CreatedAt))
                    .foreign_key(&mut group_fk(
                        GroupInvitations::Table,
                        GroupInvitations::GroupId,
                    ))
                    .foreign_key(&mut user_fk(
                        GroupInvitations::Table,
                        GroupInvitations::InviterId,
                    ))
                    .foreign_key(&mut user_fk(
                        GroupInvitations::Table,
                        GroupInvitations::InviteeId,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "uq_group_invitations_group_invitee",
                vec![GroupInvitations::GroupId, GroupInvitations::InviteeId],
                true,
            ),
            (
                "idx_group_invitations_invitee",
                vec![GroupInvitations::InviteeId, GroupInvitations::Id],
                false,
            ),
            (
                "idx_group_invitations_group",
                vec![GroupInvitations::GroupId, GroupInvitations::Id],
                false,
            ),
            // Deleting an inviter's account cascades by this index.
            (
                "idx_group_invitations_inviter",
                vec![GroupInvitations::InviterId],
                false,
            ),
        ] {
            manager
                .create_index(index(name, GroupInvitations::Table, columns, unique))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(GroupJoinRequests::Table)
                    .col(uuid(GroupJoinRequests::Id).primary_key())
                    .col(uuid(GroupJoinRequests::GroupId))
                    .col(uuid(GroupJoinRequests::UserId))
                    .col(timestamp_with_time_zone(GroupJoinRequests::CreatedAt))
                    .foreign_key(&mut group_fk(
                        GroupJoinRequests::Table,
                        GroupJoinRequests::GroupId,
                    ))
                    .foreign_key(&mut user_fk(
                        GroupJoinRequests::Table,
                        GroupJoinRequests::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, columns, unique) in [
            (
                "uq_group_join_requests_group_user",
                vec![GroupJoinRequests::GroupId, GroupJoinRequests::UserId],
                true,
            ),
            (
                "idx_group_join_requests_group",
                vec![GroupJoinRequests::GroupId, GroupJoinRequests::Id],
                false,
            ),
            (
                "idx_group_join_requests_user",
                vec![GroupJoinRequests::UserId],
                false,
            ),
        ] {
            manager
                .create_index(index(name, GroupJoinRequests::Table, columns, unique))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            GroupJoinRequests::Table.into_iden(),
            GroupInvitations::Table.into_iden(),
            GroupMembers::Table.into_iden(),
            Groups::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn index<C: IntoIden>(
    name: &str,
    table: impl IntoIden,
    columns: Vec<C>,
    unique: bool,
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column);
    }
    if unique {
        index.unique();
    }
    index.to_owned()
}

fn group_fk(table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Groups::Table, Groups::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
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
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Id,
    Name,
    NameKey,
    Description,
    Visibility,
    JoinPolicy,
    MemberCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    Id,
    GroupId,
    UserId,
    Role,
    JoinedAt,
}

#[derive(DeriveIden)]
enum GroupInvitations {
    Table,
    Id,
    GroupId,
    InviterId,
    InviteeId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum GroupJoinRequests {
    Table,
    Id,
    GroupId,
    UserId,
    CreatedAt,
}
