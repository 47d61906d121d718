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
        media,
    },
    infra::ratelimit::Action,
};

/// A message to send.
#[derive(InputObject)]
pub struct SendMessageInput {
    /// The `Conversation.id` to send to; one the viewer does not take part
    /// in is `NOT_FOUND`.
    pub conversation_id: ID,
    /// 1 to 4000 characters (trimmed), no control characters but line
    /// breaks and tabs; may be empty when the message carries attachments.
    pub body: String,
    /// Your own id for this message (1 to 64 characters): sending again with
    /// the same one returns the first message and notifies nobody twice.
    /// Reusing one in another conversation is `CONFLICT`.
    pub client_message_id: String,
    /// The `Message.id` this one answers: a message of the same
    /// conversation, else `BAD_USER_INPUT`.
    pub reply_to_id: Option<ID>,
    /// Images to send with it (at most 10): `Attachment.id`s from
    /// `uploadAttachment`, yours and not sent before, else `BAD_USER_INPUT`.
    pub attachment_ids: Option<Vec<ID>>,
}

/// A new body for one of your messages.
#[derive(InputObject)]
pub struct EditMessageInput {
    /// The `Message.id` to change.
    pub message_id: ID,
    /// 1 to 4000 characters (trimmed), no control characters but line breaks and tabs.
    pub body: String,
}

/// A reaction to add or take back.
#[derive(InputObject)]
pub struct ReactionInput {
    /// The `Message.id` reacted to.
    pub message_id: ID,
    /// One emoji (at most 10 characters, no letters, digits or spaces; else
    /// `BAD_USER_INPUT`); you have one reaction per message, so a new one
    /// replaces yours.
    pub emoji: String,
}

/// Whether you are typing in a conversation.
#[derive(InputObject)]
pub struct SetTypingInput {
    /// The `Conversation.id`.
    pub conversation_id: ID,
    /// True while typing (renew it every few seconds); false when you stop.
    pub typing: bool,
}

/// How far you have read a conversation.
#[derive(InputObject)]
pub struct MarkConversationReadInput {
    /// The `Conversation.id`.
    pub conversation_id: ID,
    /// Everything up to this seq is read: never moves back, nor past the
    /// last message; negative is `BAD_USER_INPUT`.
    // An `Int` is 32 bits: as an i64, async-graphql took larger numbers too.
    pub up_to_seq: i32,
}

#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// The conversation between you and a user you may message (friends and
    /// matches, by default; never across a block, nor after an unmatch unless
    /// you are friends: `FORBIDDEN`), opened on first use. Yourself is
    /// `BAD_USER_INPUT`; a user who does not exist (or blocked you)
    /// `NOT_FOUND`.
    async fn direct_conversation(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `User.id` of the other person.")] user_id: ID,
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

    /// Sends a message; every participant's `messageAdded` and
    /// `conversationEvents` get it. Sends are rate limited per user
    /// (`RATE_LIMITED`); where the participants may no longer write (a block,
    /// an unmatch) it is `FORBIDDEN`.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The conversation, the text and your id for the message.")]
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
        let attachment_ids = media::attachment_keys(input.attachment_ids.as_deref())?;
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
                    attachment_ids,
                },
            )
            .await?;
        Ok(Message(message))
    }

    /// Changes your message's body: its sender only (`FORBIDDEN` for anyone
    /// else); a deleted message is `CONFLICT`.
    async fn edit_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Your message and its new body.")] input: EditMessageInput,
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
    /// admin of the group (`FORBIDDEN` for anyone else). Returns the
    /// tombstone.
    async fn delete_message(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The `Message.id` to delete.")] message_id: ID,
    ) -> async_graphql::Result<Message> {
        let viewer = ctx.require_viewer().await?;
        let id = ids::expect(&message_id, NodeKind::Message)?;
        let state = ctx.state();
        // Whether the viewer runs the group, should the message be another's
        // in a group's conversation: the groups domain's to say.
        let moderates = async |group_id| state.groups.moderates(group_id, viewer.user_id).await;
        let deleted = state.chat.delete(viewer.user_id, id, moderates).await?;
        // Its attachments were released with it: their bytes go now.
        state.media.sweep_soon();
        Ok(Message(deleted))
    }

    /// Reacts to a message, replacing your earlier reaction to it; returns
    /// the message. A deleted message, or a 21st different emoji on one, is
    /// `CONFLICT`.
    async fn add_reaction(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The message and the emoji to react with.")] input: ReactionInput,
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

    /// Takes back your reaction to a message if it is this emoji; otherwise
    /// changes nothing. Returns the message.
    async fn remove_reaction(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The message and the emoji to take back.")] input: ReactionInput,
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
    /// the indicator expires by itself after 6 seconds unless renewed. Always
    /// true; rate limited per user (`RATE_LIMITED`).
    async fn set_typing(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The conversation, and whether you are typing.")] input: SetTypingInput,
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

    /// Moves your read position forward; the others get a read receipt.
    /// Returns the conversation with its new `unreadCount`.
    async fn mark_conversation_read(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The conversation, and the seq you have read up to.")]
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
