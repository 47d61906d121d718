//! The test harness: starts the real application on `127.0.0.1:0` against a
//! fresh database per test (an SQLite file in a temporary directory, or a new
//! PostgreSQL database when `KITH_TEST_DATABASE_URL` is set; Redis when
//! `KITH_TEST_REDIS_URL` is set), and talks to it over HTTP and WebSocket.
pub mod link;

use std::{net::SocketAddr, process::Stdio, sync::Arc, time::Duration};

use futures_util::{SinkExt, StreamExt};
use kith::{app::Application, config::Settings};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
    sync::oneshot,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

/// Known to the tests, so they can forge tokens signed with it.
pub const JWT_SECRET: &str = "kith-tests-8Fq2Lz0Rw5Yx3Nc7Vb1Hm4Jd6Kp9Gt";
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when it has a listener of its own.
    pub metrics_addr: Option<SocketAddr>,
    /// The SQL statements the app has run.
    pub statements: kith::app::StatementCounter,
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    /// A replica running as its own `kith` process (killed with the app).
    process: Option<Child>,
    database: Arc<TestDatabase>,
    /// The local media store's directory (unless the app stores in S3).
    media: Option<Arc<tempfile::TempDir>>,
    /// What a `kith` process has logged so far (empty in process).
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

enum TestDatabase {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

/// Starts an app with test defaults: rate limits off, a known JWT secret.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts an app after `configure` adjusts the test defaults.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let (database_url, database) = fresh_database().await;
    let mut settings = Settings {
        database_url,
        redis_url: std::env::var("KITH_TEST_REDIS_URL").ok(),
        // Tests run side by side on one Redis: each app is its own deployment.
        redis_prefix: fresh_redis_prefix(),
        listen: "127.0.0.1:0".parse().unwrap(),
        jwt_secret: Some(JWT_SECRET.into()),
        rate_limits: kith::config::Switch::Off,
        db_max_connections: 5,
        // A stop need not wait for a load balancer that is not there.
        shutdown_drain_millis: 0,
        ..Settings::default()
    };
    // Media in a directory of the test's own (on PostgreSQL the default is
    // `./media`), unless the test chooses S3.
    let media = Arc::new(tempfile::tempdir().expect("a media directory"));
    settings.media_dir = Some(media.path().to_owned());
    configure(&mut settings);
    let media = match settings.media_store {
        kith::config::MediaStoreKind::Local => Some(media),
        kith::config::MediaStoreKind::S3 => {
            settings.media_dir = None;
            None
        }
    };
    let app = Application::build(settings).await.expect("app builds");
    let addr = app.local_addr().unwrap();
    let metrics_addr = app.metrics_addr();
    let statements = app.statements();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = rx.await;
    }));
    TestApp {
        metrics_addr,
        addr,
        statements,
        client: reqwest::Client::new(),
        shutdown: Some(tx),
        process: None,
        database: Arc::new(database),
        media,
        log: Arc::default(),
    }
}

/// Starts `count` replicas of the real `kith` binary, each its own process,
/// sharing one fresh database and (through one key prefix) the Redis of
/// `KITH_TEST_REDIS_URL`: a scaled-out deployment in miniature. `None` without
/// a test Redis. `configure` adds environment variables to every replica.
pub async fn spawn_replicas(
    count: usize,
    configure: impl Fn(&mut Command),
) -> Option<Vec<TestApp>> {
    let redis_url = std::env::var("KITH_TEST_REDIS_URL").ok()?;
    Some(spawn_replicas_on(&redis_url, count, configure).await)
}

/// [`spawn_replicas`] on the Redis at `redis_url`.
pub async fn spawn_replicas_on(
    redis_url: &str,
    count: usize,
    configure: impl Fn(&mut Command),
) -> Vec<TestApp> {
    let (database_url, database) = fresh_database().await;
    let database = Arc::new(database);
    let prefix = fresh_redis_prefix();
    let mut starting = Vec::new();
    for _ in 0..count {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kith"));
        command
            .arg("serve")
            .env("DATABASE_URL", &database_url)
            .env("REDIS_URL", redis_url)
            .env("KITH_REDIS_PREFIX", &prefix)
            .env("KITH_LISTEN", "127.0.0.1:0")
            .env("KITH_JWT_SECRET", JWT_SECRET)
            .env("KITH_RATE_LIMITS", "off")
            .env("KITH_DB_MAX_CONNECTIONS", "5")
            .env("KITH_SHUTDOWN_DRAIN_MILLIS", "0")
            .env("KITH_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        configure(&mut command);
        starting.push(start_process(command, database.clone()));
    }
    // All at once on PostgreSQL, as an orchestrator starts them: migrations
    // take turns under a lock. SQLite has no such lock (nor a real use for
    // replicas): one after another there.
    if matches!(*database, TestDatabase::Postgres { .. }) {
        futures_util::future::join_all(starting).await
    } else {
        let mut replicas = Vec::new();
        for replica in starting {
            replicas.push(replica.await);
        }
        replicas
    }
}

/// Starts one `kith` process on a fresh database (and the test Redis, when
/// there is one): for what only the real binary shows, such as its stop on
/// SIGTERM. `configure` adds environment variables.
pub async fn spawn_process(configure: impl FnOnce(&mut Command)) -> TestApp {
    let (database_url, database) = fresh_database().await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_kith"));
    command
        .arg("serve")
        .env("DATABASE_URL", &database_url)
        .env("KITH_REDIS_PREFIX", fresh_redis_prefix())
        .env("KITH_LISTEN", "127.0.0.1:0")
        .env("KITH_JWT_SECRET", JWT_SECRET)
        .env("KITH_RATE_LIMITS", "off")
        .env("KITH_DB_MAX_CONNECTIONS", "5")
        .env("KITH_SHUTDOWN_DRAIN_MILLIS", "0")
        .env("KITH_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Ok(redis_url) = std::env::var("KITH_TEST_REDIS_URL") {
        command.env("REDIS_URL", redis_url);
    }
    configure(&mut command);
    start_process(command, Arc::new(database)).await
}

/// A key prefix no other test uses, so apps sharing one Redis never meet.
fn fresh_redis_prefix() -> String {
    format!("kith-test-{}:", uuid::Uuid::now_v7().simple())
}

/// A Redis of the test's own, on a free port, that the test may stop and
/// start again: for faults. Killed when dropped.
pub struct OwnRedis {
    pub port: u16,
    server: Option<Child>,
}

impl OwnRedis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, server: None };
        redis.restart().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    pub async fn kill(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.kill().await.unwrap();
        }
    }

    /// Starts the server on its port and waits until it answers.
    pub async fn restart(&mut self) {
        let port = self.port.to_string();
        let server = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server runs");
        self.server = Some(server);
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not start on port {port}");
    }
}

/// Runs the replica's command and waits for it to say where it serves.
async fn start_process(mut command: Command, database: Arc<TestDatabase>) -> TestApp {
    // Media in a directory of the test's own, unless it chose a store.
    let chose_store = command
        .as_std()
        .get_envs()
        .any(|(name, _)| name == "KITH_MEDIA_STORE" || name == "KITH_MEDIA_DIR");
    let media = (!chose_store).then(|| Arc::new(tempfile::tempdir().expect("a media directory")));
    if let Some(media) = &media {
        command.env("KITH_MEDIA_DIR", media.path());
    }
    let mut child = command.spawn().expect("kith binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("replica log") {
            if let Some((_, rest)) = line.split_once("kith serving on http://") {
                let addr = rest.split([' ', '"']).next().unwrap();
                return addr.parse::<SocketAddr>().expect("replica address");
            }
        }
        panic!("replica exited before serving");
    })
    .await
    .expect("replica serves within a minute");
    // Keep reading its log so the replica never blocks on a full pipe.
    let log: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let kept = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            kept.lock().unwrap().push(line);
        }
    });
    TestApp {
        metrics_addr: None,
        addr,
        statements: kith::app::StatementCounter::default(),
        client: reqwest::Client::new(),
        shutdown: None,
        process: Some(child),
        database,
        media,
        log,
    }
}

async fn fresh_database() -> (String, TestDatabase) {
    match std::env::var("KITH_TEST_DATABASE_URL") {
        Ok(admin_url) => {
            let name = format!("kith_test_{}", uuid::Uuid::now_v7().simple());
            let admin = Database::connect(&admin_url)
                .await
                .expect("test PostgreSQL answers");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let url = replace_database(&admin_url, &name);
            (url, TestDatabase::Postgres { admin_url, name })
        }
        Err(_) => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("kith.db").display());
            (url, TestDatabase::Sqlite(dir))
        }
    }
}

/// The same server URL with another database name.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl TestApp {
    /// Starts the in-process server's graceful shutdown (as on SIGTERM).
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs outside async; a short-lived runtime on its own thread
            // removes the database, forcing out the app's pooled connections.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

impl TestApp {
    /// Sends SIGTERM to a replica process and waits for it to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.process.as_mut().expect("a replica process");
        let pid = child.id().expect("running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM sent");
        tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("replica stops within 30 s")
            .unwrap()
    }

    /// Kills a replica process outright (as a crash would) and waits until
    /// it is gone: nothing of its shutdown runs.
    pub async fn kill(&mut self) {
        let child = self.process.as_mut().expect("a replica process");
        child.kill().await.expect("replica killed");
    }

    /// The PostgreSQL database the app runs on, if it does.
    pub fn database_name(&self) -> Option<&str> {
        match &*self.database {
            TestDatabase::Postgres { name, .. } => Some(name),
            TestDatabase::Sqlite(_) => None,
        }
    }

    /// The local media store's directory.
    /// The lines a `kith` process has logged so far (none in process).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn media_dir(&self) -> &std::path::Path {
        self.media.as_ref().expect("a local media store").path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What `/metrics` shows now.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value on the `/metrics` line that starts with `line_start` (the
    /// name and labels, then a space); 0 when there is none.
    pub async fn metric(&self, line_start: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find_map(|line| line.strip_prefix(line_start))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    /// What `/readyz` says; `None` when it does not answer with JSON.
    pub async fn readyz(&self) -> Option<Value> {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// How many live subscriptions this server holds, as `/readyz` says.
    pub async fn live_subscriptions(&self) -> u64 {
        let ready = self.readyz().await.expect("/readyz answers with JSON");
        ready["subscriptions"]
            .as_u64()
            .expect("/readyz counts subscriptions")
    }

    /// Waits until this server holds exactly `count` live subscriptions, in
    /// place of a sleep: the server counts one once it listens, so what is
    /// sent from then on reaches it; and a count that fell says one ended.
    /// Fails the test after 10 s.
    pub async fn until_live_subscriptions(&self, count: u64) {
        eventually(&format!("{count} live subscriptions"), || async {
            (self.live_subscriptions().await == count).then_some(())
        })
        .await;
    }

    /// The app's own database, when it is on PostgreSQL.
    pub fn postgres_url(&self) -> Option<String> {
        match self.database.as_ref() {
            TestDatabase::Postgres { admin_url, name } => Some(replace_database(admin_url, name)),
            TestDatabase::Sqlite(_) => None,
        }
    }

    /// The app's database as `DATABASE_URL` names it: for a `kith` command
    /// run beside the app on the same database.
    pub fn database_url(&self) -> String {
        match self.database.as_ref() {
            TestDatabase::Postgres { admin_url, name } => replace_database(admin_url, name),
            TestDatabase::Sqlite(dir) => {
                format!("sqlite://{}?mode=rw", dir.path().join("kith.db").display())
            }
        }
    }

    /// How many rows `table` of the app's database holds now: for what no
    /// query shows, such as rows a sweep should have removed.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let url = match self.database.as_ref() {
            TestDatabase::Postgres { admin_url, name } => replace_database(admin_url, name),
            TestDatabase::Sqlite(dir) => {
                format!("sqlite://{}?mode=ro", dir.path().join("kith.db").display())
            }
        };
        let db = Database::connect(&url)
            .await
            .expect("the test database answers");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("the count runs")
            .expect("a count");
        let count = row.try_get::<i64>("", "n").expect("the count is a number");
        db.close().await.ok();
        count
    }

    /// Posts an operation and returns the whole JSON response.
    pub async fn graphql(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let mut request = self
            .client
            .post(self.url("/graphql"))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        assert_eq!(
            response.status(),
            200,
            "GraphQL over application/json answers 200"
        );
        response.json().await.expect("JSON response")
    }

    /// Posts an operation without a token from the client address `from`,
    /// as a proxy trusted with `X-Forwarded-For` would say (the app runs
    /// with `trust_forwarded_for`): for per-address limits.
    pub async fn graphql_from(&self, from: &str, query: &str, variables: Value) -> Value {
        self.client
            .post(self.url("/graphql"))
            .header("x-forwarded-for", from)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("JSON response")
    }

    /// Posts an operation that must succeed and returns its `data`.
    pub async fn data(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let response = self.graphql(query, variables, token).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}"
        );
        response["data"].clone()
    }

    /// Posts every `(query, variables, token)` at the same moment, and
    /// returns each whole response in order: each request is a task of its
    /// own, its request built, and all wait on one barrier before sending,
    /// so the server has them in flight together (not one after the other
    /// as they happen to be polled).
    pub async fn at_once(&self, calls: &[(&str, Value, Option<&str>)]) -> Vec<Value> {
        let barrier = Arc::new(tokio::sync::Barrier::new(calls.len()));
        let tasks: Vec<_> = calls
            .iter()
            .map(|(query, variables, token)| {
                let mut request = self
                    .client
                    .post(self.url("/graphql"))
                    .json(&json!({ "query": query, "variables": variables }));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let response = request.send().await.expect("request sent");
                    assert_eq!(response.status(), 200);
                    response.json::<Value>().await.expect("JSON response")
                })
            })
            .collect();
        let mut responses = Vec::new();
        for task in tasks {
            responses.push(task.await.expect("the request's task"));
        }
        responses
    }

    /// Registers `username` with [`PASSWORD`] and returns its session.
    pub async fn register(&self, username: &str) -> Session {
        let data = self
            .data(
                "mutation($input: RegisterInput!) { register(input: $input) {
                    accessToken refreshToken user { id username } } }",
                json!({ "input": { "username": username, "password": PASSWORD } }),
                None,
            )
            .await;
        Session::from_payload(&data["register"])
    }

    /// Gives `session`'s user what discovery needs: an adult's birthdate
    /// (30 years and a month ago), `gender`, and a place (Berlin).
    pub async fn make_dater(&self, session: &Session, gender: &str) {
        let birthdate = chrono::Utc::now()
            .date_naive()
            .checked_sub_months(chrono::Months::new(30 * 12 + 1))
            .unwrap();
        self.data(
            "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }",
            json!({ "input": {
                "birthdate": birthdate.to_string(),
                "gender": gender,
                "location": { "latitude": 52.5, "longitude": 13.4 },
            } }),
            session.token(),
        )
        .await;
    }

    /// A public group anyone may join, created by `owner`: its `id` and its
    /// `conversation { id }`.
    pub async fn open_group(&self, owner: &Session, name: &str) -> Value {
        self.data(
            "mutation($name: String!) {
                createGroup(input: { name: $name, visibility: PUBLIC, joinPolicy: OPEN }) {
                    id conversation { id } } }",
            json!({ "name": name }),
            owner.token(),
        )
        .await["createGroup"]
            .clone()
    }

    /// Makes `a` and `b` friends: `a` asks, `b` accepts.
    pub async fn befriend(&self, a: &Session, b: &Session) {
        let request = self
            .data(
                "mutation($to: ID!) { sendFriendRequest(input: { userId: $to }) { id } }",
                json!({ "to": b.user_id }),
                a.token(),
            )
            .await;
        self.data(
            "mutation($id: ID!) { acceptFriendRequest(id: $id) { id } }",
            json!({ "id": request["sendFriendRequest"]["id"] }),
            b.token(),
        )
        .await;
    }

    /// `ann` and `bob`, friends, and their direct conversation's id.
    pub async fn friends_chatting(&self) -> (Session, Session, Value) {
        let (ann, bob) = (self.register("ann").await, self.register("bob").await);
        self.befriend(&ann, &bob).await;
        let conversation = self.direct_conversation(&ann, &bob).await;
        (ann, bob, conversation)
    }

    /// Opens (or finds) the direct conversation of `from` with `to`; its id.
    pub async fn direct_conversation(&self, from: &Session, to: &Session) -> Value {
        self.data(
            "mutation($u: ID!) { directConversation(userId: $u) { id } }",
            json!({ "u": to.user_id }),
            from.token(),
        )
        .await["directConversation"]["id"]
            .clone()
    }

    pub async fn login(&self, identifier: &str, password: &str) -> Value {
        self.graphql(
            "mutation($input: LoginInput!) { login(input: $input) {
                accessToken refreshToken user { id username } } }",
            json!({ "input": { "identifier": identifier, "password": password } }),
            None,
        )
        .await
    }

    /// A `graphql-transport-ws` socket on `/graphql`, signed in as `user`
    /// and acknowledged.
    pub async fn signed_in_socket(&self, user: &Session) -> Socket {
        self.signed_in_socket_on("/graphql", "graphql-transport-ws", user)
            .await
    }

    /// A socket on `path` speaking `protocol`, signed in as `user` and
    /// acknowledged (`connection_ack` in both protocols).
    pub async fn signed_in_socket_on(&self, path: &str, protocol: &str, user: &Session) -> Socket {
        let mut socket = self.websocket(path, protocol).await;
        socket
            .send(json!({ "type": "connection_init",
                "payload": { "authorization": format!("Bearer {}", user.access_token) } }))
            .await;
        assert_eq!(socket.receive().await["type"], "connection_ack");
        socket
    }

    /// Opens a GraphQL WebSocket on `path` speaking `protocol`.
    pub async fn websocket(&self, path: &str, protocol: &str) -> Socket {
        let mut request = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocol).unwrap(),
        );
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket connects");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            protocol,
            "the server speaks the protocol asked for"
        );
        Socket { stream }
    }
}

/// The tokens and user of one signed-in session.
#[derive(Clone, Debug)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub username: String,
}

impl Session {
    pub fn from_payload(payload: &Value) -> Self {
        Self {
            access_token: payload["accessToken"].as_str().expect("accessToken").into(),
            refresh_token: payload["refreshToken"]
                .as_str()
                .expect("refreshToken")
                .into(),
            user_id: payload["user"]["id"].as_str().expect("user.id").into(),
            username: payload["user"]["username"]
                .as_str()
                .unwrap_or_default()
                .into(),
        }
    }

    pub fn token(&self) -> Option<&str> {
        Some(&self.access_token)
    }
}

/// The first error's `extensions.code`.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a code: {response:#}"))
}

/// The first error's `extensions.field`.
pub fn error_field(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["field"].as_str()
}

/// A GraphQL WebSocket client for either protocol, as raw JSON messages.
pub struct Socket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

#[derive(Debug)]
pub enum Received {
    Json(Value),
    Closed(Option<u16>),
}

impl Socket {
    pub async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("socket send");
    }

    /// The next JSON message or the close, skipping pings and keep-alives;
    /// fails the test after `wait`.
    pub async fn receive_within(&mut self, wait: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("a message before the deadline");
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    if matches!(value["type"].as_str(), Some("ka" | "ping" | "pong")) {
                        continue;
                    }
                    return Received::Json(value);
                }
                Some(Ok(Message::Close(frame))) => {
                    return Received::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    pub async fn receive(&mut self) -> Value {
        match self.receive_within(Duration::from_secs(10)).await {
            Received::Json(value) => value,
            Received::Closed(code) => {
                panic!("socket closed ({code:?}) while a message was expected")
            }
        }
    }

    /// Sends a text frame as it is, JSON or not.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.to_owned().into()))
            .await
            .expect("socket send");
    }

    /// Sends a frame that the server may refuse part-way: whether the
    /// send itself succeeds is not the point.
    pub async fn try_send_text(&mut self, text: String) {
        let _ = self.stream.send(Message::Text(text.into())).await;
    }

    /// The next JSON message, `pong` included (keep-alives skipped).
    pub async fn receive_with_pongs(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("a message before the deadline");
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    if value["type"] == "ka" {
                        continue;
                    }
                    return value;
                }
                Some(Ok(Message::Close(frame))) => panic!("socket closed ({frame:?})"),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("socket failed: {err}"),
                None => panic!("socket ended"),
            }
        }
    }

    /// The close frame's code and reason. Any JSON message before it fails
    /// the test, except those of the types in `allowed_before` (a
    /// subscription's own `complete`, say, racing the socket's close).
    pub async fn closes_with(&mut self, allowed_before: &[&str]) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("a close before the deadline");
            match next {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(&text).expect("JSON message");
                    let kind = value["type"].as_str().unwrap_or_default();
                    if kind == "ka" || allowed_before.contains(&kind) {
                        continue;
                    }
                    panic!("expected the socket to close, got {value}");
                }
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (u16::from(frame.code), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) => panic!("closed without a code"),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("no close frame, the socket failed: {err}"),
                None => panic!("no close frame, the socket ended"),
            }
        }
    }

    /// Proves that nothing reached this socket before a marker, and returns
    /// the marker's frame; any frame but a keep-alive (told by its type)
    /// before it fails the test, naming it. A socket's frames arrive in the
    /// order the server sent them: when the marker is sent after the action
    /// under test and travels the way a leak would have (the same
    /// subscription, fed by the same topic), the window was long enough,
    /// however slow the machine.
    pub async fn nothing_before(&mut self, is_marker: impl Fn(&Value) -> bool) -> Value {
        match self.receive_within(Duration::from_secs(10)).await {
            Received::Json(frame) if is_marker(&frame) => frame,
            Received::Json(frame) => panic!("expected nothing before the marker, got {frame}"),
            Received::Closed(code) => panic!("socket closed ({code:?}) before the marker"),
        }
    }

    /// True when nothing but keep-alives arrives within `wait`.
    pub async fn stays_quiet(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(text))) if is_keep_alive(&text) => continue,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => return,
                }
            }
        })
        .await
        .is_err()
    }
}

/// A legacy protocol keep-alive (`{"type":"ka"}`), told by its type: not by
/// "ka" appearing somewhere, which a leaked message's body could make it do.
fn is_keep_alive(frame: &str) -> bool {
    serde_json::from_str::<Value>(frame).is_ok_and(|frame| frame["type"] == "ka")
}

#[test]
fn only_keep_alives_count_as_quiet() {
    assert!(is_keep_alive(r#"{"type":"ka"}"#));
    for leaked in [
        r#"{"type":"next","id":"1","payload":{"data":{"messageAdded":{"body":"\"ka\""}}}}"#,
        r#"{"type":"data","id":"1","payload":{"data":{"typing":"ka"}}}"#,
        "ka",
    ] {
        assert!(!is_keep_alive(leaked), "{leaked}");
    }
}

/// Of a race's answers, the one that failed, checked to have failed with
/// `code` (never an internal error); every other one must have succeeded.
pub fn the_loser<'a>(answers: &'a [Value], code: &str) -> &'a Value {
    let losers = answers
        .iter()
        .filter(|r| r.get("errors").is_some())
        .collect::<Vec<_>>();
    let [loser] = losers[..] else {
        panic!("exactly one loses: {answers:?}");
    };
    assert_eq!(error_code(loser), code, "{loser}");
    loser
}

/// Says the running test does not apply here (a PostgreSQL or Redis matter,
/// on a run without them), for the caller to return at once: printed, and,
/// when `KITH_TEST_SKIPS` names a file (CI sets it), recorded there with the
/// test's name, so the run's summary counts it as skipped rather than
/// passed. The test harness names each test's thread after the test.
pub fn skipped(reason: &str) {
    use std::io::Write as _;
    eprintln!("skipped: {reason}");
    let Some(record) = std::env::var_os("KITH_TEST_SKIPS") else {
        return;
    };
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(record)
        .expect("KITH_TEST_SKIPS can be written");
    writeln!(file, "{test}: {reason}").expect("the skip is recorded");
}

/// Asks `check` every 20 ms until it answers, in place of a sleep that
/// guesses how long the server takes; fails the test, naming `what`, after
/// 10 s.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(answer) = check().await {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Set in the process [`in_own_process`] starts, where the test's body runs.
const IN_OWN_PROCESS: &str = "KITH_TEST_IN_OWN_PROCESS";

/// For a test that asserts on what is process-wide (the metrics recorder, the
/// operation labels it has seen): under `cargo test` the other tests of this
/// binary share the process and move it (nextest runs each test in a process
/// of its own anyway). Runs the test `name` of `module` (its
/// `module_path!()`) again, alone, in a new process of this binary, and
/// returns true once it passed there, when the caller returns; in that
/// process it returns false and the caller runs its body:
///
/// ```ignore
/// if common::in_own_process(module_path!(), "the_test").await {
///     return;
/// }
/// ```
pub async fn in_own_process(module: &str, name: &str) -> bool {
    if std::env::var_os(IN_OWN_PROCESS).is_some() {
        return false;
    }
    // The module path starts with this binary's crate name.
    let module = module.split_once("::").map_or("", |(_, inner)| inner);
    let test = format!("{module}::{name}");
    let output = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test.as_str(), "--exact", "--test-threads=1"])
        .env(IN_OWN_PROCESS, "1")
        .kill_on_drop(true)
        .output()
        .await
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Exactly this test, and it passed: a name that matched nothing would
    // pass too, running nothing.
    if !(output.status.success() && stdout.contains("test result: ok. 1 passed;")) {
        // Indented, so that its summary line is not taken for this binary's.
        let indented = |text: &str| {
            text.lines()
                .map(|line| format!("    | {line}\n"))
                .collect::<String>()
        };
        panic!(
            "{test} in a process of its own: {}\n{}{}",
            output.status,
            indented(&stdout),
            indented(&String::from_utf8_lossy(&output.stderr)),
        );
    }
    true
}

/// A bounded random run's size and seed: `KITH_FUZZ_ITERATIONS` (else
/// `default_iterations`) and `KITH_FUZZ_SEED` (else the clock), printed so a
/// failure can be replayed.
pub fn fuzz_run(default_iterations: usize) -> (usize, u64) {
    let iterations = std::env::var("KITH_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default_iterations);
    let seed = std::env::var("KITH_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64)
        });
    println!("KITH_FUZZ_SEED={seed}");
    (iterations, seed)
}
