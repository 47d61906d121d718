//! The in-process hub: one bounded broadcast channel per topic that has
//! subscribers here. It serves a single replica on its own, and is the local
//! half of the Redis hub.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures_util::{FutureExt, Stream, StreamExt, future::BoxFuture};
use tokio::sync::broadcast;

use super::{Lagged, Payload, PubSub, Topic};

/// Messages a topic's subscribers may fall behind by before they are cut off:
/// a conversation's or group's topic carries a chat's pace; a user's or their
/// presence's, a few events a minute. The buffer is allocated whole per topic
/// (about 48 bytes a slot), and every signed-in subscriber has a user topic of
/// their own, so a small one there saves most of a socket's memory.
pub(super) const TOPIC_BUFFER: usize = 256;
const PERSONAL_TOPIC_BUFFER: usize = 32;

fn buffer_for(topic: &str) -> usize {
    if topic.starts_with("user:") || topic.starts_with("presence:") {
        PERSONAL_TOPIC_BUFFER
    } else {
        TOPIC_BUFFER
    }
}

/// Told the name of a topic whose last local subscriber went away.
type OnClosed = Box<dyn Fn(&str) + Send + Sync>;

/// What a topic's channel carries.
enum Delivery<E> {
    Event(Arc<E>),
    /// Events may have been lost on the way here (the Redis connection
    /// dropped): each subscriber is told, as if it had lagged.
    Gap,
}

// By hand: a derive would ask `E: Clone`, and the events are shared, not copied.
impl<E> Clone for Delivery<E> {
    fn clone(&self) -> Self {
        match self {
            Self::Event(event) => Self::Event(event.clone()),
            Self::Gap => Self::Gap,
        }
    }
}

pub struct LocalPubSub<E> {
    hub: Arc<Hub<E>>,
}

impl<E> Clone for LocalPubSub<E> {
    fn clone(&self) -> Self {
        Self {
            hub: self.hub.clone(),
        }
    }
}

impl<E> Default for LocalPubSub<E> {
    fn default() -> Self {
        Self {
            hub: Arc::new(Hub {
                topics: Mutex::default(),
                on_closed: None,
            }),
        }
    }
}

struct Hub<E> {
    topics: Mutex<HashMap<String, broadcast::Sender<Delivery<E>>>>,
    on_closed: Option<OnClosed>,
}

impl<E: Payload> LocalPubSub<E> {
    /// A hub that calls `on_closed` when a topic loses its last subscriber.
    pub(super) fn with_on_closed(on_closed: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            hub: Arc::new(Hub {
                topics: Mutex::default(),
                on_closed: Some(Box::new(on_closed)),
            }),
        }
    }

    /// Hands `event` to this replica's subscribers of `topic`, if any.
    pub(super) fn deliver(&self, topic: &str, event: Arc<E>) {
        let topics = self.hub.topics();
        if let Some(sender) = topics.get(topic) {
            // An error only means nobody is listening right now.
            let _ = sender.send(Delivery::Event(event));
        }
    }

    /// Tells every subscriber here that events may have been lost: each is
    /// told it lagged, and recovers (catches up, subscribes again) or ends.
    pub(super) fn gap_all(&self) {
        for sender in self.hub.topics().values() {
            let _ = sender.send(Delivery::Gap);
        }
    }

    /// Whether anyone here listens to `topic`.
    pub(super) fn is_open(&self, topic: &str) -> bool {
        self.hub.topics().contains_key(topic)
    }

    /// Every topic someone here listens to.
    pub(super) fn open_topics(&self) -> Vec<String> {
        self.hub.topics().keys().cloned().collect()
    }

    /// Listens to `topic` here, at once.
    pub(super) fn open(&self, topic: &str) -> Topic<E> {
        let receiver = self
            .hub
            .topics()
            .entry(topic.to_owned())
            .or_insert_with(|| broadcast::channel(buffer_for(topic)).0)
            .subscribe();
        let guard = TopicReceiver {
            receiver,
            topic: topic.to_owned(),
            hub: self.hub.clone(),
        };
        receive(guard).boxed()
    }
}

impl<E> Hub<E> {
    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Delivery<E>>>> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<E: Payload> PubSub<E> for LocalPubSub<E> {
    fn publish(&self, topic: &str, event: E) {
        self.deliver(topic, Arc::new(event));
    }

    fn subscribe(&self, topic: &str) -> BoxFuture<'static, Topic<E>> {
        std::future::ready(self.open(topic)).boxed()
    }
}

/// Removes the topic's channel when its last subscriber goes away.
struct TopicReceiver<E> {
    receiver: broadcast::Receiver<Delivery<E>>,
    topic: String,
    hub: Arc<Hub<E>>,
}

impl<E> Drop for TopicReceiver<E> {
    fn drop(&mut self) {
        let closed = {
            let mut topics = self.hub.topics();
            let last = topics
                .get(&self.topic)
                .is_some_and(|sender| sender.receiver_count() <= 1);
            if last {
                topics.remove(&self.topic);
            }
            last
        };
        if closed && let Some(on_closed) = &self.hub.on_closed {
            on_closed(&self.topic);
        }
    }
}

/// Events until the channel closes; a lag (or a gap) is reported once and
/// ends the stream.
fn receive<E: Payload>(guard: TopicReceiver<E>) -> impl Stream<Item = Result<Arc<E>, Lagged>> {
    futures_util::stream::unfold(Some(guard), |state| async move {
        let mut guard = state?;
        match guard.receiver.recv().await {
            Ok(Delivery::Event(event)) => Some((Ok(event), Some(guard))),
            Ok(Delivery::Gap) => Some((Err(Lagged::UNKNOWN), None)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some((Err(Lagged(missed)), None)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    /// Any payload will do: the hub never looks inside.
    fn signed_in() -> String {
        format!("signed in: {}", Uuid::now_v7())
    }

    #[tokio::test]
    async fn subscribers_get_events_and_topics_are_dropped_with_them() {
        let closed = Arc::new(Mutex::new(Vec::new()));
        let hub = LocalPubSub::<String>::with_on_closed({
            let closed = closed.clone();
            move |topic| closed.lock().unwrap().push(topic.to_owned())
        });
        let mut first = hub.subscribe("t").await;
        let second = hub.subscribe("t").await;
        let event = signed_in();
        hub.publish("t", event.clone());
        assert_eq!(*first.next().await.unwrap().unwrap(), event);
        drop(first);
        assert!(hub.is_open("t"), "one subscriber is left");
        drop(second);
        assert!(hub.open_topics().is_empty());
        assert_eq!(*closed.lock().unwrap(), ["t"]);
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_and_cut_off() {
        let hub = LocalPubSub::<String>::default();
        let mut slow = hub.subscribe("t").await;
        for _ in 0..TOPIC_BUFFER + 5 {
            hub.publish("t", signed_in());
        }
        assert_eq!(slow.next().await.unwrap().unwrap_err(), Lagged(5));
        assert!(slow.next().await.is_none());
    }

    #[tokio::test]
    async fn a_gap_reaches_every_subscriber_after_the_events_before_it() {
        let hub = LocalPubSub::<String>::default();
        let mut first = hub.subscribe("a").await;
        let mut second = hub.subscribe("b").await;
        let event = signed_in();
        hub.publish("a", event.clone());
        hub.gap_all();
        assert_eq!(*first.next().await.unwrap().unwrap(), event);
        assert_eq!(first.next().await.unwrap().unwrap_err(), Lagged::UNKNOWN);
        assert!(first.next().await.is_none());
        assert_eq!(second.next().await.unwrap().unwrap_err(), Lagged::UNKNOWN);
    }
}
