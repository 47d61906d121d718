//! The `notifications` subscription: things that happened to the viewer's account:
//! a sign-in on another device, a friend request received or accepted, a group
//! invitation, a join request to a group the viewer runs, a join request approved,
//! a new match and a match that ended.

use async_graphql::{Context, ID, SimpleObject, Subscription, Union};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};

use crate::{
    domain::events::{Event, user_topic},
    graphql::{
        ContextExt,
        accounts::Session,
        discovery::Match,
        groups::{GroupInvitation, GroupJoinRequest},
        ids::{self, NodeKind},
        live,
        social::FriendRequest,
    },
};

/// Someone signed in to the viewer's account on another device.
#[derive(SimpleObject)]
pub struct NewSignInNotification {
    /// The new session: revoke it with `revokeSession` if it was not you.
    pub session: Session,
    /// When the sign-in happened.
    pub created_at: DateTime<Utc>,
}

/// Someone asked the viewer to be friends.
#[derive(SimpleObject)]
pub struct FriendRequestReceivedNotification {
    /// The request, PENDING: answer it with `acceptFriendRequest` or
    /// `declineFriendRequest`.
    pub request: FriendRequest,
}

/// Someone accepted the viewer's friend request.
#[derive(SimpleObject)]
pub struct FriendRequestAcceptedNotification {
    /// The request, ACCEPTED: its recipient is now the viewer's friend.
    pub request: FriendRequest,
}

/// Someone invited the viewer to a group.
#[derive(SimpleObject)]
pub struct GroupInvitationNotification {
    /// The invitation, PENDING: answer it with `acceptGroupInvitation` or
    /// `declineGroupInvitation`.
    pub invitation: GroupInvitation,
}

/// Someone asked to join a group the viewer owns or administers.
#[derive(SimpleObject)]
pub struct GroupJoinRequestNotification {
    /// The request, PENDING: answer it with `approveJoinRequest` or
    /// `rejectJoinRequest`.
    pub request: GroupJoinRequest,
}

/// The viewer's request to join a group was approved: they are a member now.
#[derive(SimpleObject)]
pub struct GroupJoinRequestApprovedNotification {
    /// The viewer's request, APPROVED.
    pub request: GroupJoinRequest,
}

/// The viewer and someone liked each other.
#[derive(SimpleObject)]
pub struct MatchNotification {
    /// The new match.
    #[graphql(name = "match")]
    pub matched: Match,
}

/// One of the viewer's matches ended (either of them unmatched, or blocked).
#[derive(SimpleObject)]
pub struct MatchEndedNotification {
    /// The `Match.id` of the ended match (no longer fetchable).
    pub match_id: ID,
}

/// Something that happened to the viewer's account, told by `notifications`.
#[derive(Union)]
pub enum Notification {
    NewSignIn(NewSignInNotification),
    FriendRequestReceived(FriendRequestReceivedNotification),
    FriendRequestAccepted(FriendRequestAcceptedNotification),
    GroupInvitation(GroupInvitationNotification),
    GroupJoinRequest(GroupJoinRequestNotification),
    GroupJoinRequestApproved(GroupJoinRequestApprovedNotification),
    Match(MatchNotification),
    MatchEnded(MatchEndedNotification),
}

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// What happens to the viewer's account, live: sign-ins on other devices,
    /// friend requests received and accepted, group invitations, join
    /// requests to groups they run and their own approved, matches made and
    /// ended. Nothing is replayed on resubscribing; after falling behind it
    /// ends with an error saying so.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Notification>> + use<>>
    {
        // Boxed, for memory: see "Boxed setup" in `live`.
        Box::pin(open_notifications(ctx)).await
    }
}

async fn open_notifications(
    ctx: &Context<'_>,
) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<Notification>> + use<>> {
    let viewer = ctx.require_viewer().await?;
    let state = ctx.state().clone();
    let events = live::stop_on_lag(state.pubsub.subscribe(&user_topic(viewer.user_id)).await);
    let accounts = state.accounts.clone();
    let notifications = events.filter_map(move |event| {
        let accounts = accounts.clone();
        // Boxed, so the stream does not carry a database read's future while
        // it waits.
        Box::pin(async move {
            let event = match event {
                Ok(event) => event,
                Err(lagged) => return Some(Err(lagged)),
            };
            match &*event {
                Event::SignedIn { session_id, .. } if *session_id != viewer.session_id => {
                    match accounts.active_session(*session_id).await {
                        Ok(Some(model)) => {
                            Some(Ok(Notification::NewSignIn(NewSignInNotification {
                                created_at: model.created_at,
                                session: Session {
                                    model,
                                    current: false,
                                },
                            })))
                        }
                        Ok(None) => None,
                        Err(err) => Some(Err(err.into())),
                    }
                }
                Event::FriendRequestReceived { request } => Some(Ok(
                    Notification::FriendRequestReceived(FriendRequestReceivedNotification {
                        request: FriendRequest(request.clone()),
                    }),
                )),
                Event::FriendRequestAccepted { request } => Some(Ok(
                    Notification::FriendRequestAccepted(FriendRequestAcceptedNotification {
                        request: FriendRequest(request.clone()),
                    }),
                )),
                Event::GroupInvitationReceived { invitation } => Some(Ok(
                    Notification::GroupInvitation(GroupInvitationNotification {
                        invitation: GroupInvitation(invitation.clone()),
                    }),
                )),
                Event::GroupJoinRequestReceived { request } => Some(Ok(
                    Notification::GroupJoinRequest(GroupJoinRequestNotification {
                        request: GroupJoinRequest(request.clone()),
                    }),
                )),
                Event::GroupJoinRequestApproved { request } => Some(Ok(
                    Notification::GroupJoinRequestApproved(GroupJoinRequestApprovedNotification {
                        request: GroupJoinRequest(request.clone()),
                    }),
                )),
                Event::MatchCreated { matched } => {
                    Some(Ok(Notification::Match(MatchNotification {
                        matched: Match::new(matched.clone(), viewer.user_id),
                    })))
                }
                Event::MatchEnded { match_id, .. } => {
                    Some(Ok(Notification::MatchEnded(MatchEndedNotification {
                        match_id: ids::encode(NodeKind::Match, *match_id),
                    })))
                }
                _ => None,
            }
        })
    });
    Ok(live::while_session_lives(ctx, viewer, notifications).await?)
}
