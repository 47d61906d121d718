//! What every subscription shares: it lives only as long as the session that
//! opened it. It ends when that session is revoked (logout, revokeSession, a reused
//! refresh token) or its access token expires, and a subscriber that falls behind is
//! told so and ended rather than silently skipped.

use std::{future::ready, sync::Arc};

use async_graphql::ErrorExtensions;
use futures_util::{Stream, StreamExt, stream::BoxStream};

use crate::{
    auth::Viewer,
    domain::accounts::Accounts,
    error::{AppError, AppResult},
    infra::pubsub::{Event, Lagged, PubSub, user_topic},
};

/// Ends `items` when the viewer's session ends. The session is checked once more
/// after listening for revocations starts, so one that lands in between is not
/// missed.
pub async fn while_session_lives<T: Send + 'static>(
    pubsub: &Arc<dyn PubSub>,
    accounts: &Accounts,
    viewer: Viewer,
    items: impl Stream<Item = async_graphql::Result<T>> + Send + 'static,
) -> AppResult<BoxStream<'static, async_graphql::Result<T>>> {
    let mut revocations = pubsub
        .subscribe(&user_topic(viewer.user_id))
        .await
        .filter(move |event| ready(ends_session(event, &viewer)));
    if accounts
        .session_validity(viewer.session_id)
        .await?
        .is_none()
    {
        return Err(AppError::unauthenticated("session has ended"));
    }
    let expiry = (viewer.token_expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    let session_ends = async move {
        tokio::select! {
            _ = revocations.next() => {}
            _ = tokio::time::sleep(expiry) => {}
        }
    };
    let active = ActiveSubscription::count();
    Ok(items
        .take_until(session_ends)
        // The guard lives as long as the stream, however it ends: completed,
        // cancelled by the client, or dropped with its socket.
        .map(move |item| {
            let _ = &active;
            item
        })
        .boxed())
}

/// Keeps `kith_subscriptions_active` right: one per live subscription stream.
struct ActiveSubscription;

impl ActiveSubscription {
    fn count() -> Self {
        metrics::gauge!("kith_subscriptions_active").increment(1.0);
        Self
    }
}

impl Drop for ActiveSubscription {
    fn drop(&mut self) {
        metrics::gauge!("kith_subscriptions_active").decrement(1.0);
    }
}

fn ends_session(event: &Result<Arc<Event>, Lagged>, viewer: &Viewer) -> bool {
    match event {
        Ok(event) => match &**event {
            Event::SessionsRevoked { session_ids, .. } => session_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&viewer.session_id)),
            _ => false,
        },
        // Missing revocations is not safe: end rather than guess.
        Err(Lagged(_)) => true,
    }
}

/// Passes events through; on a lag, yields one error saying so, then ends.
pub fn stop_on_lag(
    events: impl Stream<Item = Result<Arc<Event>, Lagged>> + Send + 'static,
) -> impl Stream<Item = async_graphql::Result<Arc<Event>>> + Send + 'static {
    events.scan(false, |lagged, event| {
        if *lagged {
            return ready(None);
        }
        ready(Some(event.map_err(|Lagged(missed)| {
            *lagged = true;
            async_graphql::Error::new(format!(
                "subscription fell {missed} events behind and was ended; subscribe again"
            ))
            .extend_with(|_, ext| ext.set("code", "INTERNAL_SERVER_ERROR"))
        })))
    })
}
