//! The hub for many replicas: every event goes to this replica's subscribers at
//! once (through the local hub) and to Redis, whose subscribers on the other
//! replicas hand it to theirs. Each replica subscribes in Redis only to the
//! topics someone on it listens to.
//!
//! What keeps it whole:
//! - Publishes leave through one task, in order, pipelined in batches: one
//!   publisher's events reach every replica in the order they were made.
//! - Subscribes and unsubscribes go through one task too, which acts on what
//!   the local hub wants at that moment (listen or not), so a topic closed and
//!   reopened at once never ends up unsubscribed.
//! - A subscribe completes once Redis confirmed it (see [`PubSub::subscribe`]).
//! - A replica skips its own events coming back from Redis: they were
//!   delivered locally already.
//! - Redis away: events still reach this replica's subscribers, and the other
//!   replicas' miss them. When the connection is back every open topic is
//!   subscribed again, and then every subscriber here is told it may have
//!   missed events (a gap): a conversation's feed catches up from the
//!   database, a session watcher asks whether its session still holds, and
//!   the rest end with an error that says to subscribe again. Nothing is
//!   skipped silently.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures_util::{FutureExt, future::BoxFuture};
use redis::{PushKind, Value, aio::ConnectionManager};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use uuid::Uuid;

use super::{LocalPubSub, Payload, PubSub, Topic};
use crate::infra::redis::{COMMAND_TIMEOUT, Redis};

/// Most commands sent to Redis in one pipeline.
const BATCH: usize = 512;
/// How often the subscriber connection is checked, so topics subscribed while
/// Redis was away are subscribed once it is back.
const CHECK_EVERY: Duration = Duration::from_secs(1);

pub struct RedisPubSub<E> {
    local: LocalPubSub<E>,
    /// This replica, so its own events are not delivered twice.
    origin: Uuid,
    redis: Redis,
    outbox: mpsc::UnboundedSender<(String, Vec<u8>)>,
    control: mpsc::UnboundedSender<Control>,
}

enum Control {
    /// Make Redis match whether the topic is listened to here, then say so.
    Sync(String, Option<oneshot::Sender<()>>),
    /// Make Redis match every topic; after an outage (events may have been
    /// lost), tell every subscriber here once that succeeded.
    SyncAll { after_outage: bool },
}

impl<E: Payload> RedisPubSub<E> {
    /// The hub and the tasks that carry its traffic (to stop with the app).
    pub fn start(redis: &Redis) -> anyhow::Result<(Arc<Self>, Vec<JoinHandle<()>>)> {
        let (control, control_rx) = mpsc::unbounded_channel();
        let local = LocalPubSub::with_on_closed({
            let control = control.clone();
            move |topic| {
                let _ = control.send(Control::Sync(topic.to_owned(), None));
            }
        });
        let (pushes, pushes_rx) = mpsc::unbounded_channel();
        let subscriber = redis.subscriber(pushes)?;
        let (outbox, outbox_rx) = mpsc::unbounded_channel();
        let hub = Arc::new(Self {
            local: local.clone(),
            origin: Uuid::now_v7(),
            redis: redis.clone(),
            outbox,
            control: control.clone(),
        });
        let channels = Channels(redis.key("ps:"));
        let tasks = vec![
            tokio::spawn(send_publishes(redis.clone(), outbox_rx)),
            tokio::spawn(keep_subscriptions(
                subscriber.clone(),
                local.clone(),
                channels.clone(),
                (control.clone(), control_rx),
            )),
            tokio::spawn(resync_after_outages(subscriber, control.clone())),
            tokio::spawn(receive(pushes_rx, local, channels, hub.origin, control)),
        ];
        Ok((hub, tasks))
    }
}

impl<E: Payload> PubSub<E> for RedisPubSub<E> {
    fn publish(&self, topic: &str, event: E) {
        let event = Arc::new(event);
        match encode(self.origin, &event) {
            Ok(payload) => {
                let _ = self.outbox.send((topic.to_owned(), payload));
            }
            Err(err) => tracing::error!(error = %err, topic, "encoding an event"),
        }
        self.local.deliver(topic, event);
    }

    fn subscribe(&self, topic: &str) -> BoxFuture<'static, Topic<E>> {
        let events = self.local.open(topic);
        if !self.redis.is_up() {
            // Listen here now, and in Redis once it is back.
            let _ = self.control.send(Control::Sync(topic.to_owned(), None));
            return std::future::ready(events).boxed();
        }
        let (done, confirmed) = oneshot::channel();
        let _ = self
            .control
            .send(Control::Sync(topic.to_owned(), Some(done)));
        async move {
            // Past the timeout Redis is as good as away: listen locally.
            let _ = tokio::time::timeout(COMMAND_TIMEOUT * 2, confirmed).await;
            events
        }
        .boxed()
    }
}

/// Topic names as Redis channels: the deployment's prefix, `ps:`, the topic.
#[derive(Clone)]
struct Channels(String);

impl Channels {
    fn of(&self, topic: &str) -> String {
        format!("{}{topic}", self.0)
    }

    fn topic<'a>(&self, channel: &'a [u8]) -> Option<&'a str> {
        std::str::from_utf8(channel.strip_prefix(self.0.as_bytes())?).ok()
    }
}

/// The origin's 16 bytes, then the event as JSON.
fn encode<E: Payload>(origin: Uuid, event: &E) -> serde_json::Result<Vec<u8>> {
    let mut payload = origin.as_bytes().to_vec();
    serde_json::to_writer(&mut payload, event)?;
    Ok(payload)
}

fn origin_of(payload: &[u8]) -> Option<Uuid> {
    Uuid::from_slice(payload.get(..16)?).ok()
}

/// Sends queued publishes in order, a pipeline at a time. While Redis is away
/// they are dropped (counted): waiting would only grow the queue.
async fn send_publishes(redis: Redis, mut outbox: mpsc::UnboundedReceiver<(String, Vec<u8>)>) {
    let mut connection = redis.connection();
    let channels = Channels(redis.key("ps:"));
    let mut batch = Vec::with_capacity(BATCH);
    while outbox.recv_many(&mut batch, BATCH).await > 0 {
        let count = batch.len() as u64;
        if !redis.is_up() {
            metrics::counter!("kith_pubsub_dropped_total").increment(count);
            batch.clear();
            continue;
        }
        let mut pipe = redis::pipe();
        for (topic, payload) in batch.drain(..) {
            pipe.publish(channels.of(&topic), payload).ignore();
        }
        if redis.within(pipe.exec_async(&mut connection)).await.is_ok() {
            metrics::counter!("kith_pubsub_published_total").increment(count);
        } else {
            metrics::counter!("kith_pubsub_dropped_total").increment(count);
            tracing::warn!(count, "could not publish events to Redis");
        }
    }
}

/// Keeps this replica's Redis subscriptions equal to the topics listened to
/// here, answering each subscriber once Redis confirmed.
async fn keep_subscriptions<E: Payload>(
    mut subscriber: ConnectionManager,
    local: LocalPubSub<E>,
    channels: Channels,
    (retry, mut control): (
        mpsc::UnboundedSender<Control>,
        mpsc::UnboundedReceiver<Control>,
    ),
) {
    // What Redis was last told, so an outage's leftovers can be dropped.
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut batch = Vec::with_capacity(BATCH);
    while control.recv_many(&mut batch, BATCH).await > 0 {
        let mut topics = HashSet::new();
        let mut waiting = Vec::new();
        let mut after_outage = false;
        for command in batch.drain(..) {
            match command {
                Control::Sync(topic, done) => {
                    topics.insert(topic);
                    waiting.extend(done);
                }
                Control::SyncAll { after_outage: gap } => {
                    after_outage |= gap;
                    topics.extend(local.open_topics());
                    topics.extend(subscribed.iter().cloned());
                }
            }
        }
        let mut synced = true;
        let (open, closed): (Vec<String>, Vec<String>) =
            topics.into_iter().partition(|topic| local.is_open(topic));
        if !open.is_empty() {
            let names: Vec<String> = open.iter().map(|t| channels.of(t)).collect();
            let done = tokio::time::timeout(COMMAND_TIMEOUT, subscriber.subscribe(&names)).await;
            if matches!(done, Ok(Ok(()))) {
                subscribed.extend(open);
            } else {
                // Slow or away: try every open topic again in a moment, still
                // owing the gap if one is owed.
                synced = false;
                tracing::warn!(count = names.len(), "Redis subscribe failed; retrying");
                let retry = retry.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(CHECK_EVERY).await;
                    let _ = retry.send(Control::SyncAll { after_outage });
                });
            }
        }
        if !closed.is_empty() {
            let names: Vec<String> = closed.iter().map(|t| channels.of(t)).collect();
            let done = tokio::time::timeout(COMMAND_TIMEOUT, subscriber.unsubscribe(&names)).await;
            if matches!(done, Ok(Ok(()))) {
                for topic in &closed {
                    subscribed.remove(topic);
                }
            }
        }
        metrics::gauge!("kith_pubsub_redis_topics").set(subscribed.len() as f64);
        if after_outage && synced {
            tracing::info!("Redis subscriptions restored; telling subscribers of the gap");
            metrics::counter!("kith_pubsub_gaps_total").increment(1);
            local.gap_all();
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Pings the subscriber connection (which also makes it reconnect), and asks
/// for every topic to be subscribed again whenever it comes back.
async fn resync_after_outages(
    mut subscriber: ConnectionManager,
    control: mpsc::UnboundedSender<Control>,
) {
    let mut was_up = true;
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let ping = redis::cmd("PING");
        let pong =
            tokio::time::timeout(COMMAND_TIMEOUT, ping.query_async::<Value>(&mut subscriber));
        let up = matches!(pong.await, Ok(Ok(_)));
        if up
            && !was_up
            && control
                .send(Control::SyncAll { after_outage: true })
                .is_err()
        {
            return;
        }
        was_up = up;
    }
}

/// Hands other replicas' events to this replica's subscribers. A dropped
/// connection loses what was published meanwhile, however soon it is back:
/// the subscriptions are restored, then the gap is told.
async fn receive<E: Payload>(
    mut pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
    local: LocalPubSub<E>,
    channels: Channels,
    origin: Uuid,
    control: mpsc::UnboundedSender<Control>,
) {
    while let Some(push) = pushes.recv().await {
        if push.kind == PushKind::Disconnection {
            tracing::warn!("Redis subscriber connection dropped");
            let _ = control.send(Control::SyncAll { after_outage: true });
            continue;
        }
        if push.kind != PushKind::Message {
            continue;
        }
        let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice() else {
            continue;
        };
        let Some(topic) = channels.topic(channel) else {
            continue;
        };
        if origin_of(payload) == Some(origin) || !local.is_open(topic) {
            continue;
        }
        // Anything on our channels that is not ours (too short to carry an
        // origin, say) is skipped, never a panic that would stop receiving.
        let Some(body) = payload.get(16..) else {
            continue;
        };
        match serde_json::from_slice::<E>(body) {
            Ok(event) => {
                metrics::counter!("kith_pubsub_received_total").increment(1);
                local.deliver(topic, Arc::new(event));
            }
            Err(err) => tracing::warn!(error = %err, topic, "an event from Redis does not decode"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_origin_and_event() {
        let origin = Uuid::now_v7();
        let event = format!("group deleted: {}", Uuid::now_v7());
        let payload = encode(origin, &event).unwrap();
        assert_eq!(origin_of(&payload), Some(origin));
        assert_eq!(
            serde_json::from_slice::<String>(&payload[16..]).unwrap(),
            event
        );
        let channels = Channels("kith:ps:".into());
        assert_eq!(channels.topic(b"kith:ps:user:1"), Some("user:1"));
        assert_eq!(channels.topic(b"other:ps:user:1"), None);
    }
}
