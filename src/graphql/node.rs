//! The `Node` interface and `node`/`nodes`: any ID resolves to its object, or null
//! when it is missing or hidden from the viewer.

use async_graphql::{Context, ID, Interface, Object};

use crate::{
    error::AppError,
    graphql::{
        ContextExt,
        accounts::Session,
        chat::{Conversation, Message, find_conversation},
        discovery::{Match, find_match},
        groups::{Group, GroupInvitation, GroupJoinRequest, find_group},
        ids::{self, NodeKind},
        pagination::MAX_PAGE,
        social::FriendRequest,
        users::{User, load_user},
    },
};

/// An object with a global ID, which `node` and `nodes` fetch back. IDs are
/// opaque strings: store them, never build or parse them.
#[derive(Interface)]
#[graphql(field(
    name = "id",
    ty = "ID",
    desc = "The object's global ID, unique across all types."
))]
pub enum Node {
    User(User),
    Session(Session),
    FriendRequest(FriendRequest),
    Group(Group),
    GroupInvitation(GroupInvitation),
    GroupJoinRequest(GroupJoinRequest),
    Conversation(Conversation),
    Message(Message),
    Match(Match),
}

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global ID; null when there is none, or the viewer
    /// may not see it (a friend request, invitation, join request, message,
    /// conversation, match or session is only its parties' own).
    async fn node(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "A global ID, from any type's `id`.")] id: ID,
    ) -> async_graphql::Result<Option<Node>> {
        resolve(ctx, &id).await
    }

    /// One entry per id, in order; null where an id resolves to nothing (as
    /// `node` would).
    #[graphql(complexity = "crate::graphql::pagination::list_cost(ids.len(), child_complexity)")]
    async fn nodes(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "At most 100 global IDs; more is `BAD_USER_INPUT`.")] ids: Vec<ID>,
    ) -> async_graphql::Result<Vec<Option<Node>>> {
        if ids.len() > MAX_PAGE {
            return Err(AppError::bad_input("ids", format!("at most {MAX_PAGE} ids")).into());
        }
        // Resolved together, so users share one loader batch.
        futures_util::future::try_join_all(ids.iter().map(|id| resolve(ctx, id))).await
    }
}

async fn resolve(ctx: &Context<'_>, id: &ID) -> async_graphql::Result<Option<Node>> {
    let Some((kind, key)) = ids::decode(id) else {
        return Ok(None);
    };
    Ok(match kind {
        NodeKind::User => load_user(ctx, key).await?.map(Node::User),
        // Requests are their sender's and recipient's alone.
        NodeKind::FriendRequest => match ctx.viewer().await? {
            Some(viewer) => ctx
                .state()
                .social
                .request_for(viewer.user_id, key)
                .await?
                .map(|request| Node::FriendRequest(FriendRequest(request))),
            None => None,
        },
        NodeKind::Group => find_group(ctx, key).await?.map(Node::Group),
        // Invitations are their invitee's and the group's managers'; join
        // requests their requester's and the group's managers'.
        NodeKind::GroupInvitation => match ctx.viewer().await? {
            Some(viewer) => ctx
                .state()
                .groups
                .invitation_for(viewer.user_id, key)
                .await?
                .map(|invitation| Node::GroupInvitation(GroupInvitation(invitation))),
            None => None,
        },
        NodeKind::GroupJoinRequest => match ctx.viewer().await? {
            Some(viewer) => ctx
                .state()
                .groups
                .join_request_for(viewer.user_id, key)
                .await?
                .map(|request| Node::GroupJoinRequest(GroupJoinRequest(request))),
            None => None,
        },
        NodeKind::Conversation => find_conversation(ctx, key).await?.map(Node::Conversation),
        // A match is its two users' alone.
        NodeKind::Match => find_match(ctx, key).await?.map(Node::Match),
        // A message is its conversation's participants' alone.
        NodeKind::Message => {
            let Some(viewer) = ctx.viewer().await? else {
                return Ok(None);
            };
            let chat = &ctx.state().chat;
            match chat.messages_by_id(&[key]).await?.pop() {
                Some(message)
                    if chat
                        .membership(viewer.user_id, message.conversation_id)
                        .await?
                        .is_some() =>
                {
                    Some(Node::Message(Message(message)))
                }
                _ => None,
            }
        }
        NodeKind::Session => {
            // Sessions are their owner's alone.
            let Some(viewer) = ctx.viewer().await? else {
                return Ok(None);
            };
            ctx.state()
                .accounts
                .sessions(viewer.user_id)
                .await?
                .into_iter()
                .find(|s| s.id == key)
                .map(|model| {
                    Node::Session(Session {
                        current: model.id == viewer.session_id,
                        model,
                    })
                })
        }
        // Reached through their user or message, whose rules decide who
        // sees them; not nodes of their own.
        NodeKind::Photo | NodeKind::Attachment => None,
    })
}
