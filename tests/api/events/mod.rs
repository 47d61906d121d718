//! Domain events to the outside: the outbox written with each change and
//! relayed to NATS JetStream, read back here from the stream as a consumer
//! would, or posted to webhooks (`webhooks`: a receiver of the test's
//! own). Each NATS test runs a `nats-server -js` of its own on a free
//! port, so it may stop and restart it, and its stream meets no other
//! test's.

mod accounts;
mod webhooks;

use std::{collections::HashSet, process::Stdio, time::Duration};

use serde_json::Value;
use tokio::{net::TcpStream, process::Child, process::Command};

use crate::common::eventually;

pub const STREAM: &str = "KITH_EVENTS";

/// A NATS server with JetStream, its store in a directory of its own.
pub struct OwnNats {
    port: u16,
    store: tempfile::TempDir,
    server: Option<Child>,
}

impl OwnNats {
    /// `None` when `nats-server` is not installed (then the caller skips).
    pub async fn start() -> Option<Self> {
        if std::process::Command::new("nats-server")
            .arg("--version")
            .output()
            .is_err()
        {
            crate::common::skipped("needs nats-server on PATH");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = Self {
            port,
            store: tempfile::tempdir().unwrap(),
            server: None,
        };
        nats.restart().await;
        Some(nats)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server, as a crash would.
    pub async fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill().await.unwrap();
        }
    }

    /// Starts the server on its port and store, and waits until it answers.
    pub async fn restart(&mut self) {
        let server = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server runs");
        self.server = Some(server);
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nats-server did not start on port {}", self.port);
    }

    /// Every event in the stream so far, in stream order.
    pub async fn events(&self) -> Vec<Value> {
        let client = async_nats::connect(self.url()).await.expect("NATS answers");
        let jetstream = async_nats::jetstream::new(client);
        let Ok(mut stream) = jetstream.get_stream(STREAM).await else {
            return Vec::new();
        };
        let last = stream
            .info()
            .await
            .expect("stream info")
            .state
            .last_sequence;
        let mut events = Vec::new();
        for sequence in 1..=last {
            let message = stream
                .get_raw_message(sequence)
                .await
                .expect("a stored message");
            let mut event: Value = serde_json::from_slice(&message.payload).expect("JSON");
            event["_subject"] = Value::String(message.subject.to_string());
            event["_msgId"] = message
                .headers
                .get("Nats-Msg-Id")
                .map_or(Value::Null, |id| Value::String(id.to_string()));
            events.push(event);
        }
        events
    }

    /// The events once `count` of `kind` are in the stream.
    pub async fn until(&self, kind: &str, count: usize) -> Vec<Value> {
        eventually(&format!("{count} {kind} in the stream"), || async {
            let events = self.events().await;
            (of_type(&events, kind).len() >= count).then_some(events)
        })
        .await
    }
}

/// The events of one type.
pub fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Fails unless every event id is unique.
pub fn assert_no_duplicates(events: &[Value]) {
    let ids: HashSet<_> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "an event twice: {events:#?}");
}
