//! `messageAdded`: one conversation's new messages, or all the viewer's.

use async_graphql::{Context, ID, Subscription};
use futures_util::{Stream, StreamExt};

use super::Message;
use crate::{
    domain::chat::feed::{Feed, FeedError, listen_each},
    error::AppError,
    graphql::{
        ContextExt,
        ids::{self, NodeKind},
        live,
    },
};

#[derive(Default)]
pub struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// New messages, the viewer's own included (their other devices), of one
    /// conversation, or of all the viewer's when `conversationId` is left out
    /// (the most recent 1,000, and any they join meanwhile). With `sinceSeq`
    /// (one conversation only), first every stored message after it, then live
    /// ones: in seq order, with no gap and no duplicate. A conversation's feed
    /// ends when the viewer leaves it (removed from the group, or a block).
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "The `Conversation.id` to follow; all the viewer's when left out. One they do not take part in is `NOT_FOUND`."
        )]
        conversation_id: Option<ID>,
        #[graphql(
            desc = "With `conversationId`: first replay every message after this seq (0 for all), then go live. Negative, or past the last message, is `BAD_USER_INPUT`."
        )]
        since_seq: Option<i64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Message>> + use<>> {
        // Boxed, for memory: see "Boxed setup" in `live`.
        Box::pin(open_message_added(ctx, conversation_id, since_seq)).await
    }
}

async fn open_message_added(
    ctx: &Context<'_>,
    conversation_id: Option<ID>,
    since_seq: Option<i64>,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Message>> + use<>> {
    let viewer = ctx.require_viewer().await?;
    if since_seq.is_some_and(|seq| seq < 0) {
        return Err(AppError::bad_input("sinceSeq", "sinceSeq must not be negative").into());
    }
    let state = ctx.state().clone();
    let feed = match conversation_id {
        None if since_seq.is_some() => {
            return Err(AppError::bad_input(
                "sinceSeq",
                "sinceSeq needs a conversationId: seqs count within one conversation",
            )
            .into());
        }
        None => Feed::everything(state.chat.clone(), state.pubsub.clone(), viewer.user_id).await?,
        Some(id) => {
            let key = ids::expect(&id, NodeKind::Conversation)?;
            let not_found = || AppError::not_found("conversation not found");
            let conversation = state.chat.find(key).await?.ok_or_else(not_found)?;
            // Listen first, then check access and read where the
            // conversation stands: nothing sent or revoked in between is
            // missed.
            let live = listen_each(&state.pubsub, key, viewer.user_id, conversation.group_id).await;
            let membership = state
                .chat
                .readable(viewer.user_id, key)
                .await?
                .ok_or_else(not_found)?;
            let conversation = membership.conversation;
            if since_seq.is_some_and(|seq| seq > conversation.last_seq) {
                return Err(AppError::bad_input(
                    "sinceSeq",
                    format!(
                        "sinceSeq is past the conversation's last message ({})",
                        conversation.last_seq
                    ),
                )
                .into());
            }
            let last = since_seq.unwrap_or(conversation.last_seq);
            Feed::one(
                state.chat.clone(),
                state.pubsub.clone(),
                viewer.user_id,
                conversation,
                live,
                last,
                since_seq.is_some(),
            )
        }
    };
    let messages = futures_util::stream::unfold(feed, Feed::next).map(|next| {
        next.map(Message).map_err(|err| match err {
            FeedError::Lagged(lagged) => live::lag_error(lagged),
            FeedError::Failed(err) => err.into(),
        })
    });
    Ok(live::while_session_lives(ctx, viewer, messages).await?)
}
