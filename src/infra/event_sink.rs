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

#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Publishes `payload` on `subject`, acknowledged (stored) before it
    /// returns; `id` lets the sink drop a repeat.
    async fn publish(&self, subject: &str, id: &str, payload: Bytes) -> anyhow::Result<()>;
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
    async fn publish(&self, subject: &str, id: &str, payload: Bytes) -> anyhow::Result<()> {
        self.ensure_stream().await?;
        let ack = self
            .context
            .send_publish(
                subject.to_owned(),
                PublishMessage::build().payload(payload).message_id(id),
            )
            .await
            .map_err(|err| anyhow::anyhow!("publishing to JetStream: {err}"))?;
        ack.await
            .map_err(|err| anyhow::anyhow!("JetStream did not acknowledge: {err}"))?;
        Ok(())
    }
}
