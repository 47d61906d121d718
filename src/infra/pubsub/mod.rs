//! Publish/subscribe between the code that changes things and the subscriptions
//! that report them. Topics are strings, payloads are opaque to the hub (see
//! [`Payload`]); each topic has a bounded channel, so a slow
//! subscriber never slows the publisher: it falls behind, is told it lagged, and
//! its subscription ends.
//!
//! Two hubs implement the port: [`LocalPubSub`] serves one replica, and
//! [`RedisPubSub`] (with `REDIS_URL`) carries every event to the other replicas
//! too. Domain code only publishes; subscriptions only subscribe.

mod local;
mod redis_hub;

use std::sync::Arc;

use futures_util::{FutureExt, future::BoxFuture, stream::BoxStream};
use serde::{Serialize, de::DeserializeOwned};

pub use self::{local::LocalPubSub, redis_hub::RedisPubSub};

/// What a hub carries: any type that can cross to the other replicas as JSON.
/// The hub knows nothing else of it; the domain's events are one payload
/// (`domain::events::Event`), the caches' invalidations another.
pub trait Payload: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Payload for T {}

/// A subscriber missed events: it read too slowly (this many), or the
/// connection to the other replicas dropped meanwhile ([`Lagged::UNKNOWN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lagged(pub u64);

impl Lagged {
    /// Some events, how many unknown, may have been lost.
    pub const UNKNOWN: Self = Self(0);
}

impl std::fmt::Display for Lagged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => f.write_str("may have missed events"),
            missed => write!(f, "fell {missed} events behind"),
        }
    }
}

/// One topic's events as a subscriber receives them.
pub type Topic<E> = BoxStream<'static, Result<Arc<E>, Lagged>>;

pub trait PubSub<E: Payload>: Send + Sync + 'static {
    /// Delivers to current subscribers, on every replica; call after the change
    /// has committed.
    fn publish(&self, topic: &str, event: E);

    /// Starts listening to `topic`. The future completes once events published
    /// from then on, from any replica, will arrive: a subscriber that listens
    /// and then reads the database misses nothing in between.
    fn subscribe(&self, topic: &str) -> BoxFuture<'static, Topic<E>>;

    /// [`Self::subscribe`] to many topics at once, in their order.
    fn subscribe_all(&self, topics: Vec<String>) -> BoxFuture<'static, Vec<Topic<E>>> {
        let pending: Vec<_> = topics.iter().map(|topic| self.subscribe(topic)).collect();
        futures_util::future::join_all(pending).boxed()
    }
}
