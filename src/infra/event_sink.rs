//! Where relayed domain events go: NATS JetStream. The relay (in
//! `domain::outbox`) hands each event here with its id; the sink knows
//! nothing of what it carries.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};
use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::OnceCell;

/// How long JetStream remembers an event id, dropping a second publish of
/// it: longer than any relay's retry after a lost acknowledgement.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How long one publish may wait for JetStream's acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// One event for the sink.
pub struct Outgoing {
    pub subject: String,
    /// Lets the sink drop a repeat.
    pub id: String,
    pub payload: Bytes,
}

#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Publishes `events` in their order, each acknowledged (stored) before
    /// this returns; how many from the start were, and the failure that
    /// stopped the rest.
    async fn publish_all(&self, events: Vec<Outgoing>) -> (usize, Option<anyhow::Error>);
}

/// JetStream on one NATS server: the stream is made (or found) on first
/// use, taking every `kith.>` subject.
pub struct JetStreamSink {
    context: jetstream::Context,
    stream: String,
    ready: OnceCell<()>,
}

impl JetStreamSink {
    /// Connects in the background: kith starts whether or not NATS is up,
    /// and the relay waits for it.
    pub async fn connect(url: &str, stream: &str) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await?;
        let mut context = jetstream::new(client);
        context.set_timeout(ACK_TIMEOUT);
        Ok(Self {
            context,
            stream: stream.to_owned(),
            ready: OnceCell::new(),
        })
    }

    async fn ensure_stream(&self) -> anyhow::Result<()> {
        self.ready
            .get_or_try_init(|| async {
                self.context
                    .get_or_create_stream(stream::Config {
                        name: self.stream.clone(),
                        subjects: vec!["kith.>".into()],
                        duplicate_window: DUPLICATE_WINDOW,
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|err| anyhow::anyhow!("creating stream {}: {err}", self.stream))
            })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl EventSink for JetStreamSink {
    /// Sends every event before waiting for any acknowledgement: one round
    /// trip per batch, not per event. JetStream stores one connection's
    /// messages in the order sent, and answers in that order; an event
    /// after a failure that was stored anyway is dropped as a repeat when
    /// the relay sends it again.
    async fn publish_all(&self, events: Vec<Outgoing>) -> (usize, Option<anyhow::Error>) {
        if let Err(err) = self.ensure_stream().await {
            return (0, Some(err));
        }
        let mut acks = Vec::with_capacity(events.len());
        let mut failure = None;
        for event in events {
            let sent = self
                .context
                .send_publish(
                    event.subject,
                    PublishMessage::build()
                        .payload(event.payload)
                        .message_id(event.id),
                )
                .await;
            match sent {
                Ok(ack) => acks.push(ack),
                Err(err) => {
                    failure = Some(anyhow::anyhow!("publishing to JetStream: {err}"));
                    break;
                }
            }
        }
        let sent = acks.len();
        for (stored, ack) in acks.into_iter().enumerate() {
            if let Err(err) = ack.await {
                return (
                    stored,
                    Some(anyhow::anyhow!("JetStream did not acknowledge: {err}")),
                );
            }
        }
        (sent, failure)
    }
}
