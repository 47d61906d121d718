//! Domain events to the outside: the outbox written with each change and
//! relayed to NATS JetStream, read back here from the stream as a consumer
//! would, or posted to webhooks (`webhooks`: a receiver of the test's
//! own). Each NATS test runs a `nats-server -js` of its own on a free
//! port, so it may stop and restart it, and its stream meets no other
//! test's.
//!
//! Every event read from a stream is checked against its type's published
//! JSON Schema (`docs/events/schemas/<type>.json`): an event that breaks it,
//! or whose type has none, fails the test that read it. `schemas` checks the
//! schemas themselves and the types table of `docs/events.md`.

mod accounts;
mod chat;
mod discovery;
mod groups;
mod order;
mod profile;
mod schemas;
mod social;
mod webhooks;

use std::{
    collections::{BTreeMap, HashSet},
    path::PathBuf,
    process::Stdio,
    sync::OnceLock,
    time::Duration,
};

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
            // Before the test's own fields below, which no consumer sees.
            assert_matches_schema(&event);
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

/// Fails unless `event` is valid against its type's schema; a type with no
/// schema fails too.
pub fn assert_matches_schema(event: &Value) {
    let kind = event["type"].as_str().expect("an event names its type");
    let validator = validators()
        .get(kind)
        .unwrap_or_else(|| panic!("no schema for `{kind}` in docs/events/schemas: {event:#}"));
    let errors: Vec<String> = validator
        .iter_errors(event)
        .map(|error| format!("{} (at {})", error, error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "`{kind}` breaks its schema: {errors:#?}\n{event:#}"
    );
}

/// Where the published schemas are.
pub fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/events/schemas")
}

/// Every schema file, by the type its name gives (`message.sent.json`).
pub fn schema_files() -> BTreeMap<String, Value> {
    std::fs::read_dir(schema_dir())
        .expect("docs/events/schemas is there")
        .map(|entry| entry.expect("a directory entry").path())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let kind = name
                .strip_suffix(".json")
                .unwrap_or_else(|| panic!("only .json files in docs/events/schemas: {name}"))
                .to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let schema = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{name} is not JSON: {err}"));
            (kind, schema)
        })
        .collect()
}

/// Builds a schema's validator as every test uses it: draft 2020-12, with
/// `format` asserted (a `uuid` must be one, a `date-time` RFC 3339).
pub fn validator(kind: &str, schema: &Value) -> jsonschema::Validator {
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|err| panic!("the schema of {kind} builds: {err}"))
}

fn validators() -> &'static BTreeMap<String, jsonschema::Validator> {
    static VALIDATORS: OnceLock<BTreeMap<String, jsonschema::Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        schema_files()
            .iter()
            .map(|(kind, schema)| (kind.clone(), validator(kind, schema)))
            .collect()
    })
}

/// The database key (what events carry) of an API global ID.
pub fn key(id: &Value) -> String {
    let id = id.as_str().unwrap_or_else(|| panic!("an ID: {id}"));
    kith::graphql::ids::decode(id)
        .unwrap_or_else(|| panic!("a global ID: {id}"))
        .1
        .to_string()
}

/// The database key of a signed-in user (what events carry).
pub fn user_key(user: &crate::common::Session) -> String {
    key(&Value::String(user.user_id.clone()))
}

/// Fails if any event carries one of `secrets`, or a field whose name says
/// it holds a password, a token or a code.
pub fn assert_no_secrets(events: &[Value], secrets: &[&str]) {
    fn names(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(fields) => {
                for (name, inner) in fields {
                    found.push(name.to_lowercase());
                    names(inner, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| names(item, found)),
            _ => {}
        }
    }
    for event in events {
        let text = event.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "a secret in {event:#}");
        }
        let mut found = Vec::new();
        names(event, &mut found);
        for name in found {
            assert!(
                !["password", "token", "code", "hash", "secret"]
                    .iter()
                    .any(|word| name.contains(word)),
                "a field `{name}` in {event:#}"
            );
        }
    }
}

/// Waits until the relay has published everything written so far (so a
/// check that nothing more arrived means something), and returns the events.
pub async fn settled(app: &crate::common::TestApp, nats: &OwnNats) -> Vec<Value> {
    eventually("the outbox drained", || async {
        let ready = app.readyz().await?;
        (ready["events"]["waiting"] == 0).then_some(())
    })
    .await;
    nats.events().await
}
