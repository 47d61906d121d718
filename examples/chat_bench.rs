//! The messaging benchmark: kith runs as its own process (the release binary
//! beside this example), and this program is its clients.
//!
//!   cargo build --release --bin kith --example chat_bench
//!   target/release/examples/chat_bench --database-url postgres://postgres@127.0.0.1:5432/kith_chat \
//!       --scenario fanout --members 1000
//!
//! Scenarios:
//! - `fanout`: one group of `--members` members, each with an open `messageAdded`
//!   socket; the owner sends `--messages` messages, one after another. Reports
//!   how many deliveries arrived and send-to-receive latency (from just before
//!   the `sendMessage` request to the moment each socket reads the message).
//!   `--warmup` messages go first, untimed and reported apart: a server just
//!   started prepares its statements on each pool connection and grows each
//!   socket's buffers on its first frame, which a server up for a while has
//!   done long before.
//!   With `--replicas N` (N > 1, and `--redis-url`) it runs twice: first on one
//!   replica, then with the sockets round-robin over N replicas (the owner
//!   sends through the first), reporting the sockets on the sender's replica
//!   and on the others apart. Both cases use Redis, so the split is the only
//!   difference: `--scenario fanout --members 1000 --replicas 2 --redis-url
//!   redis://127.0.0.1:6379`.
//! - `sockets`: `--sockets` signed-in sockets, each with an idle `messageAdded`
//!   subscription, opened `--connect-concurrency` at a time. Reports the server's
//!   resident memory growth per socket and the kernel's SYN retransmissions and
//!   listen-queue overflows during the burst.
//! - `send`: `--senders` users each sending into their own direct conversation
//!   as fast as answers come back, for `--duration` seconds. Reports messages/s
//!   and `sendMessage` latency. With `--nats-url` it runs `--rounds` times with
//!   the events' sink off, then on (a fresh kith each), and after each "on"
//!   case checks that the stream holds one `message.sent` per message sent.
//! - `relay-lag` (needs `--nats-url`): `--rate` messages a second over
//!   `--senders` direct conversations for `--duration` seconds, paced, while a
//!   JetStream consumer reads `kith.message.sent`; reports the lag from each
//!   event's `occurredAt` (written in the send's transaction, just before
//!   commit) to its arrival, and how many arrived.
//!
//! Users, groups, conversations and sessions are written straight into the
//! database (tokens are signed with the secret this program gives kith), so
//! setting up 10,000 members takes seconds, not 10,000 password hashes.

use std::{
    collections::HashMap,
    path::PathBuf,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use async_nats::jetstream;
use chrono::Utc;
use clap::{Parser, ValueEnum};
use entity::{
    conversation, conversation_participant, friendship, group, group_member, session, user,
};
use futures_util::{SinkExt, StreamExt, future::join_all};
use kith::{
    auth::TokenIssuer,
    domain::discovery,
    graphql::ids::{self, NodeKind},
};
use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use tokio::{process::Command, sync::Semaphore};
use tokio_tungstenite::tungstenite::{
    Message as WsMessage, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
};
use uuid::Uuid;

const SECRET: &str = "kith-chat-bench-2Lk5Jh8Gf1Ds4Aq7Zx0Cv3Bn6M";
const ROWS_PER_INSERT: usize = 1000;

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// The database kith serves from (it migrates it); it must exist.
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value_t = 1000)]
    members: usize,
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// `fanout` only: messages sent before the timed ones, reported apart.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    #[arg(long, default_value_t = 1000)]
    connect_concurrency: usize,
    #[arg(long, default_value_t = 32)]
    senders: usize,
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// kith's database pool size.
    #[arg(long, default_value_t = 32)]
    db_connections: u32,
    /// kith's port; replica i listens on this plus i.
    #[arg(long, default_value_t = 18_950)]
    port: u16,
    /// `fanout` only: replicas to spread the member sockets over. Above 1 it
    /// needs `--redis-url`, and the single-replica case runs first, to compare.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Redis for kith (`REDIS_URL`), under a key prefix fresh for each case.
    #[arg(long)]
    redis_url: Option<String>,
    /// `sockets` only: sign the sockets in but subscribe to nothing, to tell
    /// a socket's cost from its subscription's.
    #[arg(long)]
    no_subscription: bool,
    /// `sockets` only: keep the sockets open this many seconds after
    /// measuring, for a profiler to look at the server meanwhile.
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// NATS with JetStream for kith's domain events (`send`, `relay-lag`).
    /// The stream `KITH_BENCH` is made afresh for each case (any stream of
    /// that name is deleted; no other stream may take `kith.>`).
    #[arg(long)]
    nats_url: Option<String>,
    /// `send` with `--nats-url`: off/on pairs to run.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// `relay-lag`: messages a second, over all senders.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
}

/// The stream the bench gives kith, made afresh for each case.
const BENCH_STREAM: &str = "KITH_BENCH";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Fanout,
    Sockets,
    Send,
    RelayLag,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.replicas > 1 {
        anyhow::ensure!(
            args.scenario == Scenario::Fanout,
            "--replicas is for the fanout scenario"
        );
        anyhow::ensure!(
            args.redis_url.is_some(),
            "--replicas above 1 needs --redis-url: events cross replicas through Redis"
        );
    }
    // Each case gets fresh processes, so nothing left over from the first
    // (its sockets going offline once their presence grace ends, say) lands
    // in the second's measurements.
    anyhow::ensure!(
        args.scenario != Scenario::RelayLag || args.nats_url.is_some(),
        "relay-lag needs --nats-url"
    );
    // (replicas, whether kith relays events to `--nats-url`)
    let cases: Vec<(usize, bool)> = match args.scenario {
        Scenario::Fanout if args.replicas > 1 => vec![(1, false), (args.replicas, false)],
        Scenario::Send if args.nats_url.is_some() => (0..args.rounds)
            .flat_map(|_| [(1, false), (1, true)])
            .collect(),
        Scenario::RelayLag => vec![(1, true)],
        _ => vec![(1, false)],
    };
    for (replicas, events) in cases {
        let nats = match (&args.nats_url, events) {
            (Some(url), true) => Some(fresh_stream(url).await?),
            _ => None,
        };
        let cluster = Kith::start_replicas(&args, replicas, events).await?;
        let db = Database::connect(&args.database_url).await?;
        let result = match args.scenario {
            Scenario::Fanout => fanout(&args, &cluster, &db).await,
            Scenario::Sockets => sockets(&args, &cluster[0], &db).await,
            Scenario::Send => send(&args, &cluster[0], &db, nats.as_ref()).await,
            Scenario::RelayLag => match &nats {
                Some(nats) => relay_lag(&args, &cluster[0], &db, nats).await,
                None => unreachable!("relay-lag cases relay"),
            },
        };
        for kith in cluster {
            kith.stop().await;
        }
        result?;
    }
    Ok(())
}

/// The kith server under test, as a child process.
struct Kith {
    child: tokio::process::Child,
    http: String,
    ws: String,
}

impl Kith {
    /// `count` replicas of one deployment: one database and, with Redis, one
    /// key prefix, fresh so that nothing of an earlier case or run is shared.
    /// Started one after another, so the first alone migrates the database.
    async fn start_replicas(args: &Args, count: usize, events: bool) -> anyhow::Result<Vec<Self>> {
        let prefix = format!("chat_bench:{}:", Uuid::now_v7().simple());
        let mut replicas = Vec::with_capacity(count);
        for replica in 0..count {
            let port = u16::try_from(replica)
                .ok()
                .and_then(|offset| args.port.checked_add(offset))
                .context("--port plus --replicas is past the last port")?;
            replicas.push(Self::start(args, port, &prefix, events).await?);
        }
        Ok(replicas)
    }

    async fn start(
        args: &Args,
        port: u16,
        redis_prefix: &str,
        events: bool,
    ) -> anyhow::Result<Self> {
        let binary: PathBuf = std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .context("locating the target directory")?
            .join("kith");
        if !binary.exists() {
            bail!(
                "{} is missing: cargo build --release --bin kith",
                binary.display()
            );
        }
        let mut command = Command::new(&binary);
        // Redis only when asked for, not from this program's environment, so
        // a run is single-replica unless it says otherwise.
        match &args.redis_url {
            Some(url) => command
                .env("REDIS_URL", url)
                .env("KITH_REDIS_PREFIX", redis_prefix),
            None => command.env_remove("REDIS_URL"),
        };
        match (&args.nats_url, events) {
            (Some(url), true) => command
                .env("KITH_NATS_URL", url)
                .env("KITH_NATS_STREAM", BENCH_STREAM),
            _ => command.env_remove("KITH_NATS_URL"),
        };
        let mut child = command
            .arg("serve")
            .env("DATABASE_URL", &args.database_url)
            .env("KITH_LISTEN", format!("127.0.0.1:{port}"))
            .env("KITH_JWT_SECRET", SECRET)
            .env("KITH_RATE_LIMITS", "off")
            // Every client socket comes from this one address.
            .env("KITH_MAX_CONNECTIONS_PER_IP", "0")
            .env("KITH_GROUP_MEMBER_CAP", "1000000")
            .env("KITH_DB_MAX_CONNECTIONS", args.db_connections.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting kith")?;
        let ready = format!("http://127.0.0.1:{port}/readyz");
        for _ in 0..200 {
            // An exited kith (its port taken, say) must not pass for ready
            // because something else answers on that port.
            if let Some(status) = child.try_wait()? {
                bail!("kith on port {port} exited: {status}");
            }
            // Without Redis a replica is ready but "degraded" (200 too), and
            // every delivery across replicas would silently be lost: wait
            // for "ok".
            if let Ok(response) = reqwest::get(&ready).await
                && let Ok(body) = response.json::<Value>().await
                && body["status"] == "ok"
            {
                return Ok(Self {
                    child,
                    http: format!("http://127.0.0.1:{port}/graphql"),
                    ws: format!("ws://127.0.0.1:{port}/graphql"),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("kith on port {port} did not become ready")
    }

    fn pid(&self) -> u32 {
        self.child.id().unwrap_or_default()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Signed-in users written straight to the database.
struct Users {
    ids: Vec<Uuid>,
    tokens: Vec<String>,
}

async fn create_users(db: &DatabaseConnection, count: usize) -> anyhow::Result<Users> {
    let run = Uuid::now_v7().simple().to_string();
    let now = Utc::now();
    let issuer = TokenIssuer::new(SECRET.as_bytes(), Duration::from_secs(3600));
    let ids: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
    let sessions: Vec<Uuid> = (0..count).map(|_| Uuid::now_v7()).collect();
    for (chunk, offset) in ids
        .chunks(ROWS_PER_INSERT)
        .zip((0..).step_by(ROWS_PER_INSERT))
    {
        user::Entity::insert_many(chunk.iter().enumerate().map(|(i, id)| user::ActiveModel {
            id: Set(*id),
            username: Set(format!("b{}_{}", &run[20..], offset + i)),
            email: Set(None),
            phone: Set(None),
            password_hash: Set(None),
            display_name: Set(None),
            bio: Set(None),
            birthdate: Set(None),
            gender: Set(None),
            interests: Set(json!([])),
            latitude: Set(None),
            longitude: Set(None),
            last_seen_at: Set(None),
            friend_list_visibility: Set("FRIENDS".into()),
            friend_count: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..discovery::new_account_defaults(None, now.date_naive())
        }))
        .exec_without_returning(db)
        .await?;
    }
    for (users, sessions) in ids
        .chunks(ROWS_PER_INSERT)
        .zip(sessions.chunks(ROWS_PER_INSERT))
    {
        session::Entity::insert_many(users.iter().zip(sessions).map(|(user, id)| {
            session::ActiveModel {
                id: Set(*id),
                user_id: Set(*user),
                user_agent: Set(Some("chat_bench".into())),
                ip: Set(None),
                created_at: Set(now),
                last_used_at: Set(now),
                expires_at: Set(now + chrono::Duration::days(1)),
                revoked_at: Set(None),
                method: Set("password".into()),
            }
        }))
        .exec_without_returning(db)
        .await?;
    }
    let tokens = ids
        .iter()
        .zip(&sessions)
        .map(|(user, session)| issuer.issue(*user, *session).map(|(token, _)| token))
        .collect::<anyhow::Result<_>>()?;
    Ok(Users { ids, tokens })
}

/// A conversation with `members` in it: a group's when `group` is set, else
/// direct (two members, made friends).
async fn create_conversation(
    db: &DatabaseConnection,
    members: &[Uuid],
    as_group: bool,
) -> anyhow::Result<Uuid> {
    let now = Utc::now();
    let conversation_id = Uuid::now_v7();
    let group_id = as_group.then(Uuid::now_v7);
    if let Some(group_id) = group_id {
        group::Entity::insert(group::ActiveModel {
            id: Set(group_id),
            name: Set("bench".into()),
            name_key: Set("bench".into()),
            description: Set(None),
            visibility: Set("PUBLIC".into()),
            join_policy: Set("OPEN".into()),
            member_count: Set(members.len() as i64),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(db)
        .await?;
        for (chunk, offset) in members
            .chunks(ROWS_PER_INSERT)
            .zip((0..).step_by(ROWS_PER_INSERT))
        {
            group_member::Entity::insert_many(chunk.iter().enumerate().map(|(i, user)| {
                group_member::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    group_id: Set(group_id),
                    user_id: Set(*user),
                    role: Set(if offset + i == 0 { "OWNER" } else { "MEMBER" }.into()),
                    joined_at: Set(now),
                }
            }))
            .exec_without_returning(db)
            .await?;
        }
    } else {
        friendship::Entity::insert_many([(0, 1), (1, 0)].map(|(a, b)| friendship::ActiveModel {
            user_id: Set(members[a]),
            friend_id: Set(members[b]),
            created_at: Set(now),
        }))
        .exec_without_returning(db)
        .await?;
    }
    let (low, high) = if as_group {
        (None, None)
    } else {
        (
            Some(members[0].min(members[1])),
            Some(members[0].max(members[1])),
        )
    };
    conversation::Entity::insert(conversation::ActiveModel {
        id: Set(conversation_id),
        kind: Set(if as_group { "GROUP" } else { "DIRECT" }.into()),
        group_id: Set(group_id),
        direct_low: Set(low),
        direct_high: Set(high),
        last_seq: Set(0),
        last_activity_at: Set(now),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    for chunk in members.chunks(ROWS_PER_INSERT) {
        conversation_participant::Entity::insert_many(chunk.iter().map(|user| {
            conversation_participant::ActiveModel {
                conversation_id: Set(conversation_id),
                user_id: Set(*user),
                last_read_seq: Set(0),
                joined_at: Set(now),
            }
        }))
        .exec_without_returning(db)
        .await?;
    }
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(conversation_id)
}

/// A client socket's read buffer: a few frames of the sizes kith sends here.
const READ_BUFFER_BYTES: usize = 4096;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws socket signed in as `token`, subscribed to
/// `messageAdded` of `conversation`.
async fn subscribe(url: &str, token: &str, conversation: Option<&str>) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // tungstenite's default read buffer is 128 KiB, zeroed before every read:
    // for thousands of sockets receiving frames of a hundred bytes, that
    // zeroing took more of this machine's two cores than kith did (perf,
    // fan-out of 1,000), and the server was measured short of CPU it would
    // have beside real clients.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket
        .send(WsMessage::Text(init.to_string().into()))
        .await?;
    loop {
        match socket.next().await {
            Some(Ok(WsMessage::Text(text))) if text.contains("connection_ack") => break,
            Some(Ok(WsMessage::Text(text))) => bail!("unexpected before ack: {text}"),
            Some(Ok(_)) => continue,
            other => bail!("socket ended before ack: {other:?}"),
        }
    }
    let Some(conversation) = conversation else {
        return Ok(socket);
    };
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($c: ID!) { messageAdded(conversationId: $c) { seq } }",
        "variables": { "c": conversation } } });
    socket
        .send(WsMessage::Text(subscribe.to_string().into()))
        .await?;
    Ok(socket)
}

/// Opens `tokens.len()` subscribed sockets, `concurrency` at a time; socket
/// `i` on `urls[i % urls.len()]`.
async fn open_sockets(
    urls: &[&str],
    tokens: &[String],
    conversation: Option<&str>,
    concurrency: usize,
) -> anyhow::Result<Vec<Socket>> {
    let gate = Arc::new(Semaphore::new(concurrency));
    let opened = join_all(tokens.iter().zip(urls.iter().cycle()).map(|(token, url)| {
        let gate = gate.clone();
        async move {
            let _permit = gate.acquire().await?;
            subscribe(url, token, conversation).await
        }
    }))
    .await;
    opened.into_iter().collect()
}

/// Waits until the servers, together, report `want` live subscriptions
/// (`kith_subscriptions_active`), and says how long that took after `since`.
/// Subscribing only sends the request: setups run on after it, queued at
/// most two per database connection, so a fixed pause could start measuring
/// before the last one is live.
async fn wait_until_live(cluster: &[Kith], want: usize, since: Instant) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut live = 0;
        for kith in cluster {
            let url = kith.http.replace("/graphql", "/metrics");
            let metrics = client.get(url).send().await?.text().await?;
            live += metrics
                .lines()
                .find_map(|line| line.strip_prefix("kith_subscriptions_active "))
                .and_then(|value| value.trim().parse::<f64>().ok())
                .unwrap_or(0.0) as usize;
        }
        if live >= want {
            println!(
                "all {want} subscriptions live {:.1} s after the first connect",
                since.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {live} of {want} subscriptions live after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send_message(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    conversation: &str,
    key: &str,
) -> anyhow::Result<i64> {
    let body: Value = client
        .post(url)
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation($c: ID!, $k: String!) { sendMessage(input: { conversationId: $c, body: \"benchmark message\", clientMessageId: $k }) { seq } }",
            "variables": { "c": conversation, "k": key },
        }))
        .send()
        .await?
        .json()
        .await?;
    body["data"]["sendMessage"]["seq"]
        .as_i64()
        .with_context(|| format!("sendMessage failed: {body}"))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut millis: Vec<f64>) {
    millis.sort_by(f64::total_cmp);
    println!(
        "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        millis.len(),
        percentile(&millis, 50.0),
        percentile(&millis, 99.0),
        millis.last().copied().unwrap_or(f64::NAN)
    );
}

/// The part of a graphql-transport-ws `next` frame of `messageAdded` the
/// receivers read; any other frame does not parse.
#[derive(serde::Deserialize)]
struct NextFrame {
    payload: NextPayload,
}

#[derive(serde::Deserialize)]
struct NextPayload {
    data: NextData,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NextData {
    message_added: AddedSeq,
}

#[derive(serde::Deserialize)]
struct AddedSeq {
    seq: i64,
}

/// `cluster[0]` is the sender's replica; member `i`'s socket is on
/// `cluster[i % cluster.len()]`.
async fn fanout(args: &Args, cluster: &[Kith], db: &DatabaseConnection) -> anyhow::Result<()> {
    // A run comparing replica counts names each case.
    let name = match (args.replicas, cluster.len()) {
        (1, _) => "fanout".to_owned(),
        (_, 1) => "fanout [1 replica]".to_owned(),
        (_, n) => format!("fanout [{n} replicas]"),
    };
    let setup = Instant::now();
    let users = create_users(db, args.members).await?;
    let conversation = create_conversation(db, &users.ids, true).await?;
    let conversation_id = ids::encode(NodeKind::Conversation, conversation).to_string();
    let urls: Vec<&str> = cluster.iter().map(|kith| kith.ws.as_str()).collect();
    let connecting = Instant::now();
    let sockets = open_sockets(
        &urls,
        &users.tokens,
        Some(&conversation_id),
        args.connect_concurrency,
    )
    .await?;
    println!(
        "{name}: {} members subscribed in {:.1} s",
        sockets.len(),
        setup.elapsed().as_secs_f64()
    );
    wait_until_live(cluster, sockets.len(), connecting).await?;
    // Sends are timed from just before each request; receivers look it up by seq.
    let sent_at: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let expected = (args.warmup + args.messages) as i64;
    // The sends' pace, and then 30 s for stragglers.
    let receive_for = Duration::from_secs(32) + Duration::from_millis(100) * expected as u32;
    // Warm-up deliveries arrived, so the timed messages start on a server
    // that has caught up.
    let warmed: Arc<AtomicUsize> = Arc::default();
    let warmup_seq = args.warmup as i64;
    let receivers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            let (sent_at, warmed) = (sent_at.clone(), warmed.clone());
            tokio::spawn(async move {
                let mut arrivals = Vec::with_capacity(expected as usize);
                // One deadline for the whole run rather than a timer per
                // frame: the receivers share the server's two cores.
                let receiving = async {
                    while (arrivals.len() as i64) < expected {
                        let Some(Ok(WsMessage::Text(text))) = socket.next().await else {
                            break;
                        };
                        if let Ok(frame) = serde_json::from_str::<NextFrame>(&text) {
                            let seq = frame.payload.data.message_added.seq;
                            arrivals.push((seq, Instant::now()));
                            if seq <= warmup_seq {
                                warmed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                };
                let _ = tokio::time::timeout(receive_for, receiving).await;
                let sent_at = sent_at.lock().unwrap();
                let latencies = arrivals
                    .into_iter()
                    .filter_map(|(seq, at)| {
                        Some((
                            seq,
                            at.duration_since(*sent_at.get(&seq)?).as_secs_f64() * 1e3,
                        ))
                    })
                    .collect::<Vec<(i64, f64)>>();
                // Kept open until every receiver is done: a socket closing
                // while others still receive would add its teardown to their
                // deliveries.
                (latencies, socket)
            })
        })
        .collect();
    // Every subscription is live; let the receivers start reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = reqwest::Client::new();
    let owner = &users.tokens[0];
    let started = Instant::now();
    let mut round_trips = Vec::with_capacity(args.warmup + args.messages);
    for i in 0..args.warmup + args.messages {
        let seq = i as i64 + 1;
        let sending = Instant::now();
        sent_at.lock().unwrap().insert(seq, sending);
        let got = send_message(
            &client,
            &cluster[0].http,
            owner,
            &conversation_id,
            &format!("m{i}"),
        )
        .await?;
        anyhow::ensure!(got == seq, "expected seq {seq}, got {got}");
        round_trips.push(sending.elapsed().as_secs_f64() * 1e3);
        // A conversation's pace, not a flood: 20 messages a second.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if i + 1 == args.warmup {
            // A large group's fan-out outlasts the pace: let the warm-up's
            // backlog drain rather than queue the timed messages behind it.
            let all = args.members * args.warmup;
            let draining = Instant::now();
            while warmed.load(Ordering::Relaxed) < all
                && draining.elapsed() < Duration::from_secs(30)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // Sockets on the sender's replica get each event from its own hub; the
    // others' through Redis, so they are reported apart. join_all keeps the
    // sockets' order, so socket i is still on replica i % n.
    let (mut local, mut remote, mut warmup) = (Vec::new(), Vec::new(), Vec::new());
    let mut open = Vec::with_capacity(args.members);
    for (i, received) in join_all(receivers).await.into_iter().enumerate() {
        let side = if i % cluster.len() == 0 {
            &mut local
        } else {
            &mut remote
        };
        let Ok((latencies, socket)) = received else {
            continue;
        };
        open.push(socket);
        let (early, timed): (Vec<_>, Vec<_>) = latencies
            .into_iter()
            .partition(|&(seq, _)| seq <= warmup_seq);
        warmup.extend(early.into_iter().map(|(_, ms)| ms));
        side.extend(timed);
    }
    drop(open);
    let warmup_round_trips = round_trips.drain(..args.warmup).collect();
    // A message's deliveries share its send: one slow commit moves a
    // thousand deliveries at once. The send's own round trip, and the time
    // each message's last delivery took, tell that apart from the fan-out.
    let mut last_delivery: HashMap<i64, f64> = HashMap::new();
    for &(seq, millis) in local.iter().chain(&remote) {
        let last = last_delivery.entry(seq).or_default();
        *last = last.max(millis);
    }
    let [local, remote] =
        [local, remote].map(|side| side.into_iter().map(|(_, ms)| ms).collect::<Vec<f64>>());
    let latencies = [local.as_slice(), remote.as_slice()].concat();
    println!(
        "{name}: {} of {} deliveries arrived ({} members x {} messages, sent over {:.1} s)",
        latencies.len(),
        args.members * args.messages,
        args.members,
        args.messages,
        started.elapsed().as_secs_f64()
    );
    report(
        &format!("{name} send-to-receive, {} warm-up messages", args.warmup),
        warmup,
    );
    report(
        &format!("{name} sendMessage round trip, warm-up"),
        warmup_round_trips,
    );
    report(&format!("{name} send-to-receive"), latencies);
    report(&format!("{name} sendMessage round trip"), round_trips);
    report(
        &format!("{name} send-to-last-receive per message"),
        last_delivery.into_values().collect(),
    );
    if cluster.len() > 1 {
        let local_members = args.members.div_ceil(cluster.len());
        let remote_members = args.members - local_members;
        for (side, members, latencies) in [
            ("on the sender's replica", local_members, local),
            ("on the other replicas", remote_members, remote),
        ] {
            println!(
                "{name}: {} of {} deliveries arrived {side} ({members} members)",
                latencies.len(),
                members * args.messages,
            );
            report(&format!("{name} send-to-receive {side}"), latencies);
        }
    }
    Ok(())
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .context("VmRSS")
}

/// The kernel's TCP counters that tell of refused or retried connects.
fn tcp_counters() -> anyhow::Result<HashMap<String, u64>> {
    let text = std::fs::read_to_string("/proc/net/netstat")?;
    let lines: Vec<&str> = text.lines().collect();
    let mut found = HashMap::new();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        if !names.starts_with("TcpExt:") {
            continue;
        }
        for (name, value) in names
            .split_whitespace()
            .zip(values.split_whitespace())
            .skip(1)
        {
            if ["TCPSynRetrans", "ListenOverflows", "ListenDrops"].contains(&name) {
                found.insert(name.to_owned(), value.parse().unwrap_or(0));
            }
        }
    }
    Ok(found)
}

async fn sockets(args: &Args, kith: &Kith, db: &DatabaseConnection) -> anyhow::Result<()> {
    let users = create_users(db, args.sockets).await?;
    let conversation = create_conversation(db, &users.ids, true).await?;
    let conversation_id = ids::encode(NodeKind::Conversation, conversation).to_string();
    // Warm the server up first (pool, schema caches) so the growth is sockets.
    let subscription = (!args.no_subscription).then_some(conversation_id.as_str());
    drop(subscribe(&kith.ws, &users.tokens[0], subscription).await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(kith.pid())?;
    let counters_before = tcp_counters()?;
    let started = Instant::now();
    let opened = open_sockets(
        &[kith.ws.as_str()],
        &users.tokens,
        subscription,
        args.connect_concurrency,
    )
    .await?;
    let took = started.elapsed();
    if subscription.is_some() {
        wait_until_live(std::slice::from_ref(kith), opened.len(), started).await?;
    }
    // Let the sockets settle, then measure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(kith.pid())?;
    let counters_after = tcp_counters()?;
    println!(
        "sockets: {} opened in {:.1} s ({} at a time); server RSS {} MiB -> {} MiB: {:.1} KiB per socket",
        opened.len(),
        took.as_secs_f64(),
        args.connect_concurrency,
        before / 1024,
        after / 1024,
        (after.saturating_sub(before)) as f64 / opened.len() as f64
    );
    for name in ["TCPSynRetrans", "ListenOverflows", "ListenDrops"] {
        let delta =
            counters_after.get(name).unwrap_or(&0) - counters_before.get(name).unwrap_or(&0);
        println!("sockets: {name} during the burst: {delta}");
    }
    if args.hold > 0 {
        println!(
            "sockets: holding them open for {} s (kith pid {})",
            args.hold,
            kith.pid()
        );
        tokio::time::sleep(Duration::from_secs(args.hold)).await;
    }
    drop(opened);
    Ok(())
}

async fn send(
    args: &Args,
    kith: &Kith,
    db: &DatabaseConnection,
    nats: Option<&jetstream::Context>,
) -> anyhow::Result<()> {
    let (users, conversations) = senders_in_pairs(db, args.senders).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.senders)
        .build()?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let workers = (0..args.senders).map(|i| {
        let (client, url) = (client.clone(), kith.http.clone());
        let token = users.tokens[i * 2].clone();
        let conversation = conversations[i].clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0;
            while Instant::now() < deadline {
                let started = Instant::now();
                send_message(&client, &url, &token, &conversation, &format!("s{i}-{n}")).await?;
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
                n += 1;
            }
            anyhow::Ok(latencies)
        })
    });
    let started = Instant::now();
    let mut latencies = Vec::new();
    for result in join_all(workers).await {
        latencies.extend(result??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sink = match (&args.nats_url, nats) {
        (None, _) => "",
        (Some(_), None) => " [events off]",
        (Some(_), Some(_)) => " [events to JetStream]",
    };
    let sent = latencies.len();
    println!(
        "send{sink}: {sent} messages from {} senders in {elapsed:.1} s: {:.0} messages/s",
        args.senders,
        sent as f64 / elapsed
    );
    report("sendMessage", latencies);
    if let Some(nats) = nats {
        // Every message's event is in the stream once the relay caught up.
        let draining = Instant::now();
        let mut stored = 0;
        while draining.elapsed() < Duration::from_secs(60) {
            stored = nats
                .get_stream(BENCH_STREAM)
                .await?
                .info()
                .await?
                .state
                .messages;
            if stored >= sent as u64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "  stream: {stored} events for {sent} messages, caught up {:.2} s after the last send",
            draining.elapsed().as_secs_f64()
        );
        anyhow::ensure!(stored == sent as u64, "events lost or doubled");
    }
    Ok(())
}

/// `senders` pairs of users, each pair in a direct conversation of its own
/// (the first of pair `i` sends into `conversations[i]`).
async fn senders_in_pairs(
    db: &DatabaseConnection,
    senders: usize,
) -> anyhow::Result<(Users, Vec<String>)> {
    let users = create_users(db, senders * 2).await?;
    let mut conversations = Vec::new();
    for pair in users.ids.chunks(2) {
        let id = create_conversation(db, pair, false).await?;
        conversations.push(ids::encode(NodeKind::Conversation, id).to_string());
    }
    Ok((users, conversations))
}

/// Deletes and makes again the stream kith relays to, so a case counts only
/// its own events.
async fn fresh_stream(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    let context = jetstream::new(client);
    let _ = context.delete_stream(BENCH_STREAM).await;
    context
        .create_stream(jetstream::stream::Config {
            name: BENCH_STREAM.into(),
            subjects: vec!["kith.>".into()],
            duplicate_window: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .map_err(|err| {
            anyhow::anyhow!("creating {BENCH_STREAM} (does another stream take kith.>?): {err}")
        })?;
    Ok(context)
}

/// Paced sends, and the lag from each `message.sent`'s commit to JetStream.
async fn relay_lag(
    args: &Args,
    kith: &Kith,
    db: &DatabaseConnection,
    nats: &jetstream::Context,
) -> anyhow::Result<()> {
    let (users, conversations) = senders_in_pairs(db, args.senders).await?;
    let consumer = nats
        .get_stream(BENCH_STREAM)
        .await?
        .create_consumer(jetstream::consumer::pull::Config {
            filter_subject: "kith.message.sent".into(),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await?;
    let total = (f64::from(args.rate) * args.duration) as usize;
    let reading = tokio::spawn(async move {
        let mut messages = consumer.messages().await?;
        let mut lags = Vec::with_capacity(total);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while lags.len() < total {
            let Ok(Some(message)) = tokio::time::timeout_at(deadline, messages.next()).await else {
                break;
            };
            let message = message.map_err(|err| anyhow::anyhow!("reading the stream: {err}"))?;
            let event: Value = serde_json::from_slice(&message.payload)?;
            let occurred = chrono::DateTime::parse_from_rfc3339(
                event["occurredAt"]
                    .as_str()
                    .context("an event without occurredAt")?,
            )?;
            let lag = Utc::now().signed_duration_since(occurred);
            lags.push(lag.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3);
        }
        anyhow::Ok(lags)
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.senders)
        .build()?;
    let limit = Arc::new(Semaphore::new(args.senders * 4));
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut sends = Vec::with_capacity(total);
    for n in 0..total {
        pace.tick().await;
        let permit = limit.clone().acquire_owned().await?;
        let i = n % args.senders;
        let (client, url) = (client.clone(), kith.http.clone());
        let token = users.tokens[i * 2].clone();
        let conversation = conversations[i].clone();
        sends.push(tokio::spawn(async move {
            let sent = send_message(&client, &url, &token, &conversation, &format!("l{n}")).await;
            drop(permit);
            sent
        }));
    }
    for sent in join_all(sends).await {
        sent??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let lags = reading.await??;
    println!(
        "relay-lag: {total} messages in {elapsed:.1} s ({:.0}/s); {} events arrived",
        total as f64 / elapsed,
        lags.len()
    );
    report("commit to JetStream", lags);
    Ok(())
}
