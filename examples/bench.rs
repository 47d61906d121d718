//! Load benchmark: prints requests per second and latency percentiles for a bare
//! axum route (the reference line), kith's `me` query and kith's `login` mutation;
//! on a database `kith seed` filled, also a friend list and friend suggestions.
//!
//! ```text
//! cargo run --release --example bench -- [--connections 64] [--warmup 2] [--duration 10]
//!     [--scenario all|bare|me|login|typename] [--database-url postgres://…]
//!     [--db-connections N]
//! ```
//!
//! Everything runs in this one process on one Tokio runtime: the bare route on
//! its own `127.0.0.1:0` listener, kith built with `Application::build` (on a
//! fresh SQLite file in a temporary directory unless `--database-url` names a
//! database), and the load generator. The generator keeps one HTTP/1.1
//! keep-alive connection per worker and sends the next request as soon as the
//! previous answer has been read (a closed loop). A response counts only when it
//! is a 200 whose body holds the expected field and, for GraphQL, no `errors`;
//! anything else is an error. The table also shows how much CPU this process and
//! the rest of the machine used in each measured window. See `bench/README.md`.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use axum::{Json, Router, routing::get};
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt as _, Full};
use hyper::{
    Method, Request, StatusCode,
    body::Bytes,
    client::conn::http1,
    header::{self, HeaderValue},
};
use hyper_util::rt::TokioIo;
use kith::{
    app::Application,
    config::{Settings, Switch},
};
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot, task::JoinSet};

// The same allocator as the `kith` binary, so kith in-process runs as it serves.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const JWT_SECRET: &str = "kith-bench-5Hs8Qe1Wr4Ty7Ui0Op3As6Df9Gh2Jk";
const PASSWORD: &str = "correct horse battery staple";
/// How long, after the measured window closes, an answer may still take before
/// its worker gives up on it (it would not be counted anyway).
const GRACE: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(about = "kith load benchmark: requests/s and latency percentiles")]
struct Args {
    /// Concurrent keep-alive connections per scenario.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds measured per scenario.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring, per scenario.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Which scenario to run.
    #[arg(long, value_enum, default_value_t = Which::All)]
    scenario: Which,
    /// Run kith against this database (e.g. postgres://postgres@127.0.0.1:5432/kith_bench,
    /// which must exist) instead of a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
    /// kith's database pool size (`KITH_DB_MAX_CONNECTIONS`); kith's default when absent.
    #[arg(long)]
    db_connections: Option<u32>,
    /// Give kith this Redis (`REDIS_URL`): the shared cache level, shared limits
    /// and pub/sub, as a replica of a scaled-out deployment runs.
    #[arg(long)]
    redis_url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Which {
    /// bare, me and login.
    All,
    Bare,
    Me,
    Login,
    /// Not in `all`: anonymous `{ __typename }` through kith, which touches no
    /// database, to tell kith's HTTP and GraphQL cost from its database cost.
    Typename,
    /// Not in `all`; needs `--database-url` to a database `kith seed` filled:
    /// a page of 20 friends with their counts, relationship and mutual friends,
    /// each connection signed in as a different seeded user.
    Friends,
    /// Not in `all`; needs a seeded database: `friendSuggestions(first: 20)`.
    Suggestions,
    /// Not in `all`; needs a seeded database: a first page of
    /// `recommendations(first: 20)`, so every request ranks a fresh deck.
    Recommendations,
}

/// One kind of request, sent over and over.
struct Target {
    name: &'static str,
    addr: SocketAddr,
    host: HeaderValue,
    method: Method,
    path: &'static str,
    /// `Authorization` values; connection `i` sends number `i % len` (none when empty).
    authorizations: Vec<HeaderValue>,
    body: Bytes,
    /// The body of a good answer contains this.
    expect: &'static str,
    /// GraphQL: a good answer has no `errors` key.
    graphql: bool,
}

impl Target {
    fn request(&self, connection: usize) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path)
            .header(header::HOST, self.host.clone());
        if self.method == Method::POST {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if !self.authorizations.is_empty() {
            let authorization = &self.authorizations[connection % self.authorizations.len()];
            builder = builder.header(header::AUTHORIZATION, authorization.clone());
        }
        builder
            .body(Full::new(self.body.clone()))
            .expect("a well-formed request")
    }

    /// `None` for a good answer, else why it is not.
    fn judge(&self, status: StatusCode, body: &[u8]) -> Option<String> {
        let bad = status != StatusCode::OK
            || !contains(body, self.expect.as_bytes())
            || (self.graphql && contains(body, b"\"errors\""));
        bad.then(|| {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
            format!("HTTP {status}: {text}")
        })
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[derive(Clone, Copy)]
struct Phases {
    measure_from: Instant,
    end: Instant,
}

impl Phases {
    fn counts(&self, finished: Instant) -> bool {
        finished >= self.measure_from && finished <= self.end
    }
}

#[derive(Default)]
struct Tally {
    /// Latencies of the good answers finished in the measured window, in µs.
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn error(&mut self, counted: bool, why: impl FnOnce() -> String) {
        if counted {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(why());
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

async fn exchange(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// One connection's closed loop until the window ends; reconnects after a
/// transport error.
async fn worker(target: Arc<Target>, connection: usize, phases: Phases) -> Tally {
    let mut tally = Tally::default();
    let give_up = phases.end + GRACE;
    while Instant::now() < phases.end {
        let mut sender = match connect(target.addr).await {
            Ok(sender) => sender,
            Err(err) => {
                tally.error(phases.counts(Instant::now()), || format!("connect: {err}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while Instant::now() < phases.end {
            let started = Instant::now();
            let outcome = tokio::time::timeout_at(
                give_up.into(),
                exchange(&mut sender, target.request(connection)),
            )
            .await;
            let finished = Instant::now();
            let counted = phases.counts(finished);
            match outcome {
                Ok(Ok((status, body))) => match target.judge(status, &body) {
                    None if counted => {
                        let micros = finished.duration_since(started).as_micros();
                        tally.latencies_us.push(micros.min(u32::MAX as u128) as u32);
                    }
                    None => {}
                    Some(why) => tally.error(counted, || why),
                },
                Ok(Err(err)) => {
                    tally.error(counted, || format!("transport: {err}"));
                    break; // reconnect
                }
                Err(_) => return tally, // past the grace period
            }
        }
    }
    tally
}

struct Row {
    name: &'static str,
    connections: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// CPU use in the measured window, percent of one core: (this process, the rest).
    cpu: Option<(f64, f64)>,
    first_error: Option<String>,
}

/// The nearest-rank percentile of sorted latencies, in milliseconds.
fn percentile(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

async fn run(target: Target, args: &Args) -> anyhow::Result<Row> {
    // One request first, so a broken setup fails loudly instead of as errors.
    let mut probe = connect(target.addr).await?;
    let (status, body) = exchange(&mut probe, target.request(0)).await?;
    if let Some(why) = target.judge(status, &body) {
        bail!("{}: the first request failed: {why}", target.name);
    }
    drop(probe);

    let target = Arc::new(target);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let phases = Phases {
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.duration),
    };
    eprintln!(
        "running {} with {} connections: {:.0} s warm-up, {:.0} s measured…",
        target.name, args.connections, args.warmup, args.duration
    );
    let mut workers = JoinSet::new();
    for connection in 0..args.connections {
        workers.spawn(worker(target.clone(), connection, phases));
    }
    tokio::time::sleep_until(phases.measure_from.into()).await;
    let cpu_from = CpuSample::take();
    tokio::time::sleep_until(phases.end.into()).await;
    let cpu = CpuSample::take()
        .zip(cpu_from)
        .map(|(to, from)| to.since(&from));
    let mut tally = Tally::default();
    while let Some(done) = workers.join_next().await {
        tally.merge(done.context("a worker panicked")?);
    }
    tally.latencies_us.sort_unstable();
    let ok = tally.latencies_us.len();
    Ok(Row {
        name: target.name,
        connections: args.connections,
        per_second: ok as f64 / args.duration,
        p50_ms: percentile(&tally.latencies_us, 50.0),
        p99_ms: percentile(&tally.latencies_us, 99.0),
        errors: tally.errors,
        cpu,
        first_error: tally.first_error,
    })
}

/// CPU time counters from `/proc` (Linux), in clock ticks.
struct CpuSample {
    /// This process: user and system time.
    this: u64,
    /// The machine: busy time and all time, summed over its cores.
    busy: u64,
    total: u64,
}

impl CpuSample {
    fn take() -> Option<Self> {
        let own = std::fs::read_to_string("/proc/self/stat").ok()?;
        // utime and stime are the 14th and 15th fields of the line, the 12th and
        // 13th after the parenthesised command name (which may hold spaces).
        let after = own.rsplit_once(')')?.1;
        let fields: Vec<u64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        let times: Vec<u64> = machine
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .take(8) // user nice system idle iowait irq softirq steal
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let total: u64 = times.iter().sum();
        Some(Self {
            this: fields.iter().sum(),
            busy: total - times[3] - times[4],
            total,
        })
    }

    /// CPU use between two samples, in percent of one core: (this process,
    /// everything else on the machine).
    fn since(&self, earlier: &Self) -> (f64, f64) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let wall = (self.total - earlier.total).max(1) as f64 / cores;
        let this = self.this.saturating_sub(earlier.this) as f64;
        let busy = self.busy.saturating_sub(earlier.busy) as f64;
        (100.0 * this / wall, 100.0 * (busy - this).max(0.0) / wall)
    }
}

/// The reference: a bare axum route answering a small JSON object.
async fn spawn_bare() -> anyhow::Result<SocketAddr> {
    let router = Router::new().route("/json", get(|| async { Json(json!({"hello": "world"})) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

struct Kith {
    addr: SocketAddr,
    /// The SQL statements kith has run so far.
    statements: kith::app::StatementCounter,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
    // Keeps the SQLite file until the end.
    _dir: Option<tempfile::TempDir>,
}

async fn spawn_kith(args: &Args) -> anyhow::Result<Kith> {
    let (database_url, db_connections) = (args.database_url.as_deref(), args.db_connections);
    let (database_url, dir) = match database_url {
        Some(url) => (url.to_owned(), None),
        None => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("kith.db").display());
            (url, Some(dir))
        }
    };
    let defaults = Settings::default();
    let settings = Settings {
        database_url,
        listen: "127.0.0.1:0".parse()?,
        jwt_secret: Some(JWT_SECRET.into()),
        rate_limits: Switch::Off,
        db_max_connections: db_connections.unwrap_or(defaults.db_max_connections),
        redis_url: args.redis_url.clone(),
        // A deployment of its own, whatever else shares the Redis.
        redis_prefix: format!("kith-bench-{}:", uuid::Uuid::now_v7().simple()),
        ..defaults
    };
    let app = Application::build(settings)
        .await
        .context("building kith")?;
    let addr = app.local_addr()?;
    let statements = app.statements();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Ok(Kith {
        addr,
        statements,
        stop,
        served,
        _dir: dir,
    })
}

/// Registers a new user (a fresh name, so reruns on one database work) and
/// returns its username and access token.
async fn register(addr: SocketAddr) -> anyhow::Result<(String, String)> {
    let username = format!("bench_{:016x}", rand::random::<u64>());
    let response: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({
            "query": "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }",
            "variables": { "input": { "username": username, "password": PASSWORD } },
        }))
        .send()
        .await?
        .json()
        .await?;
    let token = response["data"]["register"]["accessToken"]
        .as_str()
        .with_context(|| format!("register failed: {response}"))?
        .to_owned();
    Ok((username, token))
}

fn host(addr: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&addr.to_string()).expect("an address is a valid header")
}

fn graphql_body(query: &str) -> Bytes {
    Bytes::from(json!({ "query": query }).to_string())
}

/// A database URL fit to print: the password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let user = url[scheme_end + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<8} {:>11} {:>12} {:>10} {:>10} {:>8} {:>9} {:>10}",
        "scenario",
        "connections",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "cpu bench",
        "cpu others"
    );
    for row in rows {
        let (this, others) = match row.cpu {
            Some((this, others)) => (format!("{this:.0}%"), format!("{others:.0}%")),
            None => ("?".into(), "?".into()),
        };
        println!(
            "{:<8} {:>11} {:>12.0} {:>10.2} {:>10.2} {:>8} {:>9} {:>10}",
            row.name,
            row.connections,
            row.per_second,
            row.p50_ms,
            row.p99_ms,
            row.errors,
            this,
            others
        );
    }
    println!(
        "cpu: percent of one core in the measured window, used by this process and by \
         everything else on the machine (a database server, or a neighbour skewing the figures)"
    );
    for row in rows {
        if let Some(why) = &row.first_error {
            println!("first error in {}: {why}", row.name);
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 || args.duration <= 0.0 || args.warmup < 0.0 {
        bail!("--connections and --duration must be positive, --warmup not negative");
    }
    let wants = |which: Which| args.scenario == Which::All || args.scenario == which;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let database = match &args.database_url {
        Some(url) => redact(url),
        None => "SQLite (fresh file in a temporary directory)".to_owned(),
    };
    let pool = args
        .db_connections
        .unwrap_or(Settings::default().db_max_connections);
    let setup = format!(
        "setup: database {database} (pool of {pool}); build {profile}; {cores} cores; \
         server, kith and load generator in one process on one {cores}-thread Tokio runtime"
    );
    println!("{setup}");

    let mut rows = Vec::new();
    if wants(Which::Bare) {
        let addr = spawn_bare().await?;
        let target = Target {
            name: "bare",
            addr,
            host: host(addr),
            method: Method::GET,
            path: "/json",
            authorizations: Vec::new(),
            body: Bytes::new(),
            expect: "\"hello\"",
            graphql: false,
        };
        rows.push(run(target, &args).await?);
    }
    if wants(Which::Me) || wants(Which::Login) || args.scenario == Which::Typename {
        let kith = spawn_kith(&args).await?;
        let (username, token) = register(kith.addr).await?;
        if args.scenario == Which::Typename {
            let target = Target {
                name: "typename",
                addr: kith.addr,
                host: host(kith.addr),
                method: Method::POST,
                path: "/graphql",
                authorizations: Vec::new(),
                body: graphql_body("{ __typename }"),
                expect: "\"__typename\"",
                graphql: true,
            };
            rows.push(run(target, &args).await?);
        }
        if wants(Which::Me) {
            let target = Target {
                name: "me",
                addr: kith.addr,
                host: host(kith.addr),
                method: Method::POST,
                path: "/graphql",
                authorizations: vec![bearer(&token)?],
                body: graphql_body("{ me { id username } }"),
                expect: "\"username\"",
                graphql: true,
            };
            rows.push(run(target, &args).await?);
        }
        if wants(Which::Login) {
            let query = format!(
                "mutation {{ login(input: {{identifier: \"{username}\", password: \"{PASSWORD}\"}}) {{ accessToken }} }}"
            );
            let target = Target {
                name: "login",
                addr: kith.addr,
                host: host(kith.addr),
                method: Method::POST,
                path: "/graphql",
                authorizations: Vec::new(),
                body: graphql_body(&query),
                expect: "\"accessToken\"",
                graphql: true,
            };
            rows.push(run(target, &args).await?);
        }
        print_cache_report(&kith).await?;
        let _ = kith.stop.send(());
        match tokio::time::timeout(Duration::from_secs(10), kith.served).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => eprintln!("kith stopped with an error: {err:#}"),
            Ok(Err(err)) => eprintln!("kith panicked: {err}"),
            Err(_) => eprintln!("kith did not stop within 10 s"),
        }
    }
    let seeded = [Which::Friends, Which::Suggestions, Which::Recommendations];
    if seeded.contains(&args.scenario) {
        if args.database_url.is_none() {
            bail!(
                "--scenario friends/suggestions/recommendations needs --database-url to a database `kith seed` filled"
            );
        }
        let kith = spawn_kith(&args).await?;
        let tokens = seeded_sessions(kith.addr, args.connections).await?;
        let (name, query, expect) = match args.scenario {
            Which::Friends => (
                "friends",
                "{ me { friends(first: 20) { edges { node { username friendsCount viewerRelationship \
                 mutualFriends(first: 3) { totalCount } } } } } }",
                "\"friendsCount\"",
            ),
            Which::Suggestions => (
                "suggestions",
                "{ friendSuggestions(first: 20) { mutualFriendsCount user { username } } }",
                "\"friendSuggestions\"",
            ),
            _ => (
                "recommendations",
                "{ recommendations(first: 20) { edges { distanceKm \
                 compatibility { score sharedInterests distance recentActivity mutualFriends } \
                 commonInterests node { username age gender interests } } } }",
                "\"recommendations\"",
            ),
        };
        statements_per_request(&kith, query, &tokens).await?;
        let target = Target {
            name,
            addr: kith.addr,
            host: host(kith.addr),
            method: Method::POST,
            path: "/graphql",
            authorizations: tokens
                .iter()
                .map(|t| bearer(t))
                .collect::<anyhow::Result<_>>()?,
            body: graphql_body(query),
            expect,
            graphql: true,
        };
        rows.push(run(target, &args).await?);
        print_cache_report(&kith).await?;
        let _ = kith.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), kith.served).await;
    }
    println!();
    println!("{setup}");
    print_table(&rows);
    Ok(())
}

/// What kith's caches answered over the whole run (from its `/metrics`): at
/// which level lookups were served, the hit ratio, and so the database
/// queries saved; and the SQL statements it ran in all.
async fn print_cache_report(kith: &Kith) -> anyhow::Result<()> {
    let metrics = reqwest::get(format!("http://{}/metrics", kith.addr))
        .await?
        .text()
        .await?;
    let mut levels: Vec<(String, String, f64)> = Vec::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("kith_cache_lookups_total{") else {
            continue;
        };
        let (labels, value) = rest.split_once("} ").context("a metric line")?;
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        levels.push((label("cache"), label("level"), value.trim().parse()?));
    }
    levels.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut caches: Vec<&str> = levels.iter().map(|(c, _, _)| c.as_str()).collect();
    caches.dedup();
    for cache in caches {
        let of = |level: &str| {
            levels
                .iter()
                .filter(|(c, l, _)| c == cache && l == level)
                .map(|(_, _, n)| n)
                // An empty float sum is -0.0.
                .sum::<f64>()
                .abs()
        };
        let (local, shared, loaded) = (of("local"), of("shared"), of("loaded"));
        let total = local + shared + loaded;
        println!(
            "cache {cache}: {total:.0} keys looked up: {local:.0} found locally, {shared:.0} in Redis, \
             {loaded:.0} read from the database; hit ratio {:.1}%",
            100.0 * (local + shared) / total.max(1.0),
        );
    }
    println!("SQL statements in all: {}", kith.statements.get());
    Ok(())
}

fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    Ok(HeaderValue::from_str(&format!("Bearer {token}"))?)
}

/// Runs the query once per token and prints the SQL statements each took (the
/// sign-in check included): the figure should not move with the data.
async fn statements_per_request(kith: &Kith, query: &str, tokens: &[String]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut counts = Vec::with_capacity(tokens.len());
    for token in tokens {
        let before = kith.statements.get();
        let response: Value = client
            .post(format!("http://{}/graphql", kith.addr))
            .bearer_auth(token)
            .json(&json!({ "query": query }))
            .send()
            .await?
            .json()
            .await?;
        if response.get("errors").is_some() {
            bail!("the query failed: {response}");
        }
        counts.push(kith.statements.get() - before);
    }
    counts.sort_unstable();
    println!(
        "SQL statements per request over {} users: min {}, max {}",
        counts.len(),
        counts[0],
        counts[counts.len() - 1]
    );
    Ok(())
}

/// Signs in as `count` different seeded users, picked at random from the whole
/// seeded population (hubs and the long tail alike), with the seed's password.
async fn seeded_sessions(addr: SocketAddr, count: usize) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/graphql");
    let search: Value = client
        .post(&url)
        .json(&json!({ "query": "{ searchUsers(query: \"a\", first: 100) { edges { node { username } } } }" }))
        .send()
        .await?
        .json()
        .await?;
    let mut usernames: Vec<String> = search["data"]["searchUsers"]["edges"]
        .as_array()
        .map(|edges| {
            edges
                .iter()
                .filter_map(|e| e["node"]["username"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if usernames.len() < count {
        bail!(
            "found {} seeded users, need {count}: run `kith seed` on this database",
            usernames.len()
        );
    }
    use rand::seq::SliceRandom;
    usernames.shuffle(&mut rand::rng());
    let mut tokens = Vec::with_capacity(count);
    for username in usernames.into_iter().take(count) {
        let response: Value = client
            .post(&url)
            .json(&json!({
                "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
                "variables": { "i": { "identifier": username, "password": kith::seed::DEMO_PASSWORD } },
            }))
            .send()
            .await?
            .json()
            .await?;
        let token = response["data"]["login"]["accessToken"]
            .as_str()
            .with_context(|| format!("login as {username} failed: {response}"))?;
        tokens.push(token.to_owned());
    }
    Ok(tokens)
}
