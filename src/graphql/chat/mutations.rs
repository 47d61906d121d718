//! The message mutations: opening a direct conversation, sending, editing,
//! deleting, reacting, typing and read marks.

use async_graphql::{Context, ID, InputObject, Object};

use super::{Conversation, Message};
use crate::{
    domain::chat::Outgoing,
    error::AppError,
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
    },
    infra::ratelimit::Action,
};

#[derive(InputObject)]
pub struct SendMessageInput {
    pub conversation_id: ID,
    /// 1 to 4000 characters.
    pub body: String,
    /// Your own id for this message (1 to 64 characters): sending again with
    /// the same one returns the first message and notifies nobody twice.
    pub client_message_id: String,
    pub reply_to_id: Option<ID>,
}

#[derive(InputObject)]
pub struct EditMessageInput {
    pub message_id: ID,
    /// 1 to 4000 characters.
    pub body: String,
}

#[derive(InputObject)]
pub struct ReactionInput {
    pub message_id: ID,
    /// One emoji; you have one reaction per message, so a new one replaces yours.
    pub emoji: String,
}

#[derive(InputObject)]
pub struct SetTypingInput {
    pub conversation_id: ID,
    pub typing: bool,
}

#[derive(InputObject)]
pub struct MarkConversationReadInput {
    pub conversation_id: ID,
    /// Everything up to this seq is read (never moves back).
    // An `Int` is 32 bits: as an i64, async-graphql took larger numbers too.
    pub up_to_seq: i32,
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// The conversation between you and a user you may message (friends, by
    /// default; never across a block), opened on first use.
    async fn direct_conversation(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<Conversation> {
        let viewer = ctx.require_viewer().await?;
        let other = ids::expect(&user_id, NodeKind::User)?;
        Ok(Conversation(
            ctx.state()
                .chat
                .direct_conversation(viewer.user_id, other)
                .await?,
        ))
    }

    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        ctx.state()
            .limiter
            .check(Action::MessagePerUser, &viewer.user_id.to_string())
            .await?;
        let conversation_id = ids::expect(&input.conversation_id, NodeKind::Conversation)?;
        let reply_to_id = input
            .reply_to_id
            .as_ref()
            .map(|id| {
                ids::decode_as(id, NodeKind::Message).ok_or_else(|| {
                    AppError::bad_input(
                        "replyToId",
                        "replyToId is not a message of this conversation",
                    )
                })
            })
            .transpose()?;
        let message = ctx
            .state()
            .chat
            .send(
                viewer.user_id,
                Outgoing {
                    conversation_id,
                    body: input.body,
                    client_message_id: input.client_message_id,
                    reply_to_id,
                },
            )
            .await?;
        Ok(Message(message))
    }

    /// Changes your message's body.
    async fn edit_message(
        &self,
        ctx: &Context<'_>,
        input: EditMessageInput,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&input.message_id, NodeKind::Message)?;
        Ok(Message(
            ctx.state()
                .chat
                .edit(viewer.user_id, id, &input.body)
                .await?,
        ))
    }

    /// Leaves a tombstone in the message's place: its sender, or an owner or
    /// admin of the group.
    async fn delete_message(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&message_id, NodeKind::Message)?;
        let state = ctx.state();
        // Whether the viewer runs the group, should the message be another's
        // in a group's conversation: the groups domain's to say.
        let moderates = async |group_id| state.groups.moderates(group_id, viewer.user_id).await;
        Ok(Message(
            state.chat.delete(viewer.user_id, id, moderates).await?,
        ))
    }

    async fn add_reaction(
        &self,
        ctx: &Context<'_>,
        input: ReactionInput,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&input.message_id, NodeKind::Message)?;
        Ok(Message(
            ctx.state()
                .chat
                .react(viewer.user_id, id, &input.emoji)
                .await?,
        ))
    }

    async fn remove_reaction(
        &self,
        ctx: &Context<'_>,
        input: ReactionInput,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&input.message_id, NodeKind::Message)?;
        Ok(Message(
            ctx.state()
                .chat
                .unreact(viewer.user_id, id, &input.emoji)
                .await?,
        ))
    }

    /// Tells the conversation you are typing (or stopped). Nothing is stored;
    /// the indicator expires by itself after a few seconds unless renewed.
    async fn set_typing(
        &self,
        ctx: &Context<'_>,
        input: SetTypingInput,
    ) -> async_graphql::Result<bool> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&input.conversation_id, NodeKind::Conversation)?;
        let state = ctx.state();
        state
            .limiter
            .check(Action::TypingPerUser, &viewer.user_id.to_string())
            .await?;
        state
            .chat
            .set_typing(viewer.user_id, id, input.typing)
            .await?;
        Ok(true)
    }

    async fn mark_conversation_read(
        &self,
        ctx: &Context<'_>,
        input: MarkConversationReadInput,
    ) -> async_graphql::Result<Conversation> {
        let viewer = ctx.require_viewer().await?;
        let conversation_id = ids::expect(&input.conversation_id, NodeKind::Conversation)?;
        Ok(Conversation(
            ctx.state()
                .chat
                .mark_read(viewer.user_id, conversation_id, input.up_to_seq.into())
                .await?,
        ))
    }
}
