//! Conversations and messages.
//!
//! A conversation is DIRECT (one per pair of users, the pair in canonical order
//! under a unique key) or GROUP (one per group). Its participants are rows of
//! `conversation_participants`, each with the participant's read pointer; a group
//! conversation's participants follow the group's members, written in the same
//! transaction as the membership.
//!
//! Messages are numbered per conversation: `conversations.last_seq` is bumped in
//! the sending transaction (which row-locks the conversation), and the message
//! takes the new number, so numbers are gapless and unique (the unique key on
//! `(conversation_id, seq)` is the last line of defence). `(sender_id,
//! client_message_id)` is unique: a retried send finds the first one. Each user
//! has at most one reaction on a message.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(uuid(Conversations::Id).primary_key())
                    .col(string_len(Conversations::Kind, 8))
                    .col(uuid_null(Conversations::GroupId).unique_key())
                    .col(uuid_null(Conversations::DirectLow))
                    .col(uuid_null(Conversations::DirectHigh))
                    .col(big_integer(Conversations::LastSeq).default(0))
                    .col(timestamp_with_time_zone(Conversations::LastActivityAt))
                    .col(timestamp_with_time_zone(Conversations::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Conversations::Table, Conversations::GroupId)
                            .to(Groups::Table, Groups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    // A deleted account leaves the other side its conversation.
                    .foreign_key(&mut pair_fk(Conversations::DirectLow))
                    .foreign_key(&mut pair_fk(Conversations::DirectHigh))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_conversations_direct_pair")
                    .table(Conversations::Table)
                    .col(Conversations::DirectLow)
                    .col(Conversations::DirectHigh)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_conversations_direct_high")
                    .table(Conversations::Table)
                    .col(Conversations::DirectHigh)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConversationParticipants::Table)
                    .col(uuid(ConversationParticipants::ConversationId))
                    .col(uuid(ConversationParticipants::UserId))
                    // The highest seq the participant has read.
                    .col(big_integer(ConversationParticipants::LastReadSeq).default(0))
                    .col(timestamp_with_time_zone(ConversationParticipants::JoinedAt))
                    .primary_key(
                        Index::create()
                            .col(ConversationParticipants::ConversationId)
                            .col(ConversationParticipants::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                ConversationParticipants::Table,
                                ConversationParticipants::ConversationId,
                            )
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut user_fk(
                        ConversationParticipants::Table,
                        ConversationParticipants::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        // A user's conversations.
        manager
            .create_index(
                Index::create()
                    .name("idx_participants_user")
                    .table(ConversationParticipants::Table)
                    .col(ConversationParticipants::UserId)
                    .col(ConversationParticipants::ConversationId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(uuid(Messages::Id).primary_key())
                    .col(uuid(Messages::ConversationId))
                    .col(big_integer(Messages::Seq))
                    // Null once the sender's account is deleted; the message stays.
                    .col(uuid_null(Messages::SenderId))
                    .col(text(Messages::Body))
                    .col(string_len(Messages::ClientMessageId, 64))
                    .col(uuid_null(Messages::ReplyToId))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone_null(Messages::EditedAt))
                    .col(timestamp_with_time_zone_null(Messages::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::SenderId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_conversation_seq")
                    .table(Messages::Table)
                    .col(Messages::ConversationId)
                    .col(Messages::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_sender_client_id")
                    .table(Messages::Table)
                    .col(Messages::SenderId)
                    .col(Messages::ClientMessageId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // One reaction per user and message; a new emoji replaces the old.
        manager
            .create_table(
                Table::create()
                    .table(MessageReactions::Table)
                    .col(uuid(MessageReactions::MessageId))
                    .col(uuid(MessageReactions::UserId))
                    .col(string_len(MessageReactions::Emoji, 32))
                    .col(timestamp_with_time_zone(MessageReactions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(MessageReactions::MessageId)
                            .col(MessageReactions::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MessageReactions::Table, MessageReactions::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut user_fk(
                        MessageReactions::Table,
                        MessageReactions::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_message_reactions_user")
                    .table(MessageReactions::Table)
                    .col(MessageReactions::UserId)
                    .to_owned(),
            )
            .await?;

        // Groups made before this migration get their conversation now.
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO conversations (id, kind, group_id, last_seq, last_activity_at, created_at) \
             SELECT id, 'GROUP', id, 0, created_at, created_at FROM groups",
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO conversation_participants \
             (conversation_id, user_id, last_read_seq, joined_at) \
             SELECT group_id, user_id, 0, joined_at FROM group_members",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MessageReactions::Table.into_iden(),
            Messages::Table.into_iden(),
            ConversationParticipants::Table.into_iden(),
            Conversations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn pair_fk(column: Conversations) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(Conversations::Table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::SetNull)
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
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    Kind,
    GroupId,
    DirectLow,
    DirectHigh,
    LastSeq,
    LastActivityAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ConversationParticipants {
    Table,
    ConversationId,
    UserId,
    LastReadSeq,
    JoinedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ConversationId,
    Seq,
    SenderId,
    Body,
    ClientMessageId,
    ReplyToId,
    CreatedAt,
    EditedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum MessageReactions {
    Table,
    MessageId,
    UserId,
    Emoji,
    CreatedAt,
}
