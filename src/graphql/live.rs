//! What every subscription shares: it lives only as long as the session that
//! opened it. It ends when that session is revoked (logout, revokeSession, a reused
//! refresh token) or its access token expires, and a subscriber that falls behind is
//! told so and ended rather than silently skipped. A signed-in socket watches its
//! session the same way ([`watch_session`]) and closes when it ends.
//!
//! Boxed setup: each subscription resolver runs its setup (database reads, the
//! session check; 10 to 14 KiB of future) as `Box::pin(open_…(ctx, …)).await`.
//! async-graphql's generated code keeps the resolver's own future inline, in a
//! `stream::once`, beside the subscription for its whole life; boxed, the setup
//! is freed when it ends (bench/README, "The subscription resolvers' setup,
//! boxed"). Per-event reads inside the streams are boxed for the same reason.

use std::{
    future::ready,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{self, Poll},
};

use async_graphql::{Context, ErrorExtensions, OutputType};
use futures_util::{Stream, StreamExt, stream::BoxStream};

use crate::{
    domain::accounts::Accounts,
    domain::events::{Event, Events, Lagged, Topic, user_topic},
    error::{AppError, AppResult},
    graphql::{ContextExt, delivery, viewer::Viewer},
};

/// A subscription resolver's stream: `items`, ended when the viewer's session
/// ends, and handed to the socket when there is one (see `delivery`).
///
/// The session is checked again whenever revocations may have been missed (a
/// gap in the events), rather than ending every subscription on a Redis blip.
pub async fn while_session_lives<T: OutputType + Send + Sync + 'static>(
    ctx: &Context<'_>,
    viewer: Viewer,
    items: impl Stream<Item = async_graphql::Result<T>> + Send + 'static,
) -> AppResult<BoxStream<'static, async_graphql::Result<T>>> {
    let (pubsub, accounts) = (&ctx.state().pubsub, &ctx.state().accounts);
    let session_ends = watch_session(pubsub, accounts, viewer).await?;
    let active = ActiveSubscription::count(ctx.state().live_subscriptions.clone());
    let items = items
        .take_until(session_ends)
        // The guard lives as long as the stream, however it ends: completed,
        // cancelled by the client, or dropped with its socket.
        .map(move |item| {
            let _ = &active;
            item
        })
        .boxed();
    Ok(delivery::deliver(ctx, items))
}

/// Watches the viewer's session: the watch completes when the session is
/// revoked or the access token expires. `UNAUTHENTICATED` when it has
/// already ended. Subscriptions end with it, and a signed-in socket closes.
///
/// The session is checked once more after listening for revocations starts,
/// so one that lands in between is not missed.
pub async fn watch_session(
    pubsub: &Events,
    accounts: &Accounts,
    viewer: Viewer,
) -> AppResult<SessionWatch> {
    let revocations = pubsub.subscribe(&user_topic(viewer.user_id)).await;
    if !session_holds(accounts, &viewer).await? {
        return Err(AppError::unauthenticated("session has ended"));
    }
    let expiry = (viewer.token_expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    // A `timeout` around the watch rather than an async block selecting over
    // both: the block would keep its captures beside the futures made of
    // them, and this task was the largest thing a subscription kept.
    let watch = revoked(revocations, pubsub.clone(), accounts.clone(), viewer);
    Ok(SessionWatch(tokio::spawn(tokio::time::timeout(
        expiry, watch,
    ))))
}

/// Why a session's watch completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// Revoked, or its access token expired.
    Ended,
    /// Revocations may have been missed (a gap in the events) and the
    /// database could not be asked: not known to hold, not known to have
    /// ended. Not knowing is not safe, so the watch completes; a socket
    /// closes with a code the client retries on.
    Unchecked,
}

/// A session's watcher, run as a task of its own and stopped when dropped
/// (with its subscription or socket). Inline, `take_until` would poll it (a
/// broadcast receiver and a timer) on every delivery, about 3% of kith's CPU
/// in a fan-out; a task's handle costs one atomic load until the task ends.
pub struct SessionWatch(tokio::task::JoinHandle<Result<SessionEnd, tokio::time::error::Elapsed>>);

impl Future for SessionWatch {
    type Output = SessionEnd;

    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<SessionEnd> {
        // The access token expired (the timeout elapsed), or the runtime is
        // shutting down (the task was cancelled): ended either way.
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|finished| match finished {
                Ok(Ok(end)) => end,
                Ok(Err(_)) | Err(_) => SessionEnd::Ended,
            })
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn session_holds(accounts: &Accounts, viewer: &Viewer) -> AppResult<bool> {
    Ok(accounts
        .session_validity(viewer.session_id)
        .await?
        .is_some_and(|session| session.user_id == viewer.user_id))
}

/// Completes when the viewer's session is revoked. After a gap it listens
/// afresh, then asks the database itself: a revocation made while Redis was
/// away may not have reached the shared cache yet. Not knowing is not safe:
/// a database that cannot say ends it too, as [`SessionEnd::Unchecked`].
async fn revoked(
    mut events: Topic,
    pubsub: Events,
    accounts: Accounts,
    viewer: Viewer,
) -> SessionEnd {
    loop {
        match events.next().await {
            Some(Ok(event)) if ends_session(&event, &viewer) => return SessionEnd::Ended,
            Some(Ok(_)) => {}
            Some(Err(_)) => {
                events = pubsub.subscribe(&user_topic(viewer.user_id)).await;
                // Boxed: this future waits beside every live subscription,
                // and a database read inline would make each one carry it.
                match Box::pin(stored_session_holds(&accounts, &viewer)).await {
                    Some(true) => {}
                    Some(false) => return SessionEnd::Ended,
                    None => return SessionEnd::Unchecked,
                }
            }
            None => return SessionEnd::Ended,
        }
    }
}

/// Keeps `kith_subscriptions_active` and the replica's own count right: one
/// per live subscription stream. Counted once the stream listens, so a count
/// that has risen says events sent from then on reach it.
struct ActiveSubscription(Arc<AtomicUsize>);

impl ActiveSubscription {
    fn count(replica: Arc<AtomicUsize>) -> Self {
        metrics::gauge!("kith_subscriptions_active").increment(1.0);
        replica.fetch_add(1, Ordering::Relaxed);
        Self(replica)
    }
}

impl Drop for ActiveSubscription {
    fn drop(&mut self) {
        metrics::gauge!("kith_subscriptions_active").decrement(1.0);
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether the database still holds the viewer's session; `None` when it
/// could not say. Every watcher asks at once after a gap, so a busy pool is
/// given a few tries before giving up.
async fn stored_session_holds(accounts: &Accounts, viewer: &Viewer) -> Option<bool> {
    for attempt in 0..3 {
        match accounts.active_session(viewer.session_id).await {
            Ok(session) => return Some(session.is_some_and(|s| s.user_id == viewer.user_id)),
            Err(err) => {
                tracing::warn!(error = ?err, attempt, "re-checking a session after a gap");
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
            }
        }
    }
    None
}

fn ends_session(event: &Event, viewer: &Viewer) -> bool {
    match event {
        Event::SessionsRevoked { session_ids, .. } => session_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&viewer.session_id)),
        _ => false,
    }
}

/// The error a subscriber that missed events ends with.
pub fn lag_error(lagged: Lagged) -> async_graphql::Error {
    async_graphql::Error::new(format!(
        "subscription {lagged} and was ended; subscribe again"
    ))
    .extend_with(|_, ext| ext.set("code", "INTERNAL_SERVER_ERROR"))
}

/// Passes events through; on a lag, yields one error saying so, then ends.
pub fn stop_on_lag<T: Send + 'static>(
    events: impl Stream<Item = Result<T, Lagged>> + Send + 'static,
) -> impl Stream<Item = async_graphql::Result<T>> + Send + 'static {
    events.scan(false, |lagged, event| {
        if *lagged {
            return ready(None);
        }
        ready(Some(event.map_err(|missed| {
            *lagged = true;
            lag_error(missed)
        })))
    })
}
