//! Media serving benchmark: requests per second for `GET /media/<key>?expires=…&sig=…`
//! on kith (local disk store), against a bare axum route answering the same
//! bytes from memory, and their ratio.
//!
//! ```text
//! cargo run --release --example media_serve_bench -- [--connections 32] [--warmup 1] [--duration 5]
//!     [--size 5000]
//! ```
//!
//! Everything runs in this one process on one Tokio runtime, as in
//! `examples/bench.rs`: kith built with `Application::build` on a fresh
//! SQLite file and media directory in a temporary directory, the bare route
//! on its own `127.0.0.1:0` listener, and the load generator: one HTTP/1.1
//! keep-alive connection per worker (hyper's client connection API, with
//! `TCP_NODELAY`), each a closed loop. The object is a `--size`-byte
//! stand-in for a thumbnail JPEG (the server never decodes it), put through
//! kith's own store; every request uses one signed URL, as an `<img>` would.
//! A response counts when it is a 200 with every byte. See
//! `bench/README.md`, "Media: serving stored bytes".

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use axum::{Router, extract::Path, http::header, routing::get};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt as _, Empty};
use hyper::{Request, StatusCode, client::conn::http1, header::HeaderValue};
use hyper_util::rt::TokioIo;
use kith::{
    app::Application,
    config::{Settings, Switch},
    infra::media_store::{MediaKey, MediaPrefix},
};
use tokio::{net::TcpStream, sync::oneshot, task::JoinSet};

// The same allocator as the `kith` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const JWT_SECRET: &str = "kith-bench-5Hs8Qe1Wr4Ty7Ui0Op3As6Df9Gh2Jk";

#[derive(Parser, Debug)]
#[command(about = "kith media serving benchmark: requests/s, kith against a bare route")]
struct Args {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of load before measuring, per server.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Seconds measured, per server.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Bytes of the object served.
    #[arg(long, default_value_t = 5_000)]
    size: usize,
}

struct Figures {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    first_error: Option<String>,
}

type Sender = http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One connection's closed loop: latencies (µs) of counted answers, the
/// errors, and the first error's text.
async fn worker(
    addr: SocketAddr,
    path: String,
    expected: usize,
    measure_from: Instant,
    end: Instant,
) -> (Vec<u32>, u64, Option<String>) {
    let host = HeaderValue::try_from(addr.to_string()).expect("an address is a valid header");
    let mut latencies = Vec::new();
    let (mut errors, mut first_error) = (0, None);
    let mut fail = |counted: bool, why: String| {
        if counted {
            errors += 1;
            first_error.get_or_insert(why);
        }
    };
    'connections: while Instant::now() < end {
        let mut sender = match connect(addr).await {
            Ok(sender) => sender,
            Err(err) => {
                fail(Instant::now() >= measure_from, format!("connect: {err}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while Instant::now() < end {
            let request = Request::get(path.as_str())
                .header(header::HOST, host.clone())
                .body(Empty::new())
                .expect("a valid request");
            let started = Instant::now();
            let outcome = async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                anyhow::Ok((status, body.len()))
            }
            .await;
            let finished = Instant::now();
            let counted = finished >= measure_from && finished <= end;
            match outcome {
                Ok((StatusCode::OK, len)) if len == expected => {
                    if counted {
                        let micros = finished.duration_since(started).as_micros();
                        latencies.push(micros.min(u32::MAX as u128) as u32);
                    }
                }
                Ok((status, len)) => fail(counted, format!("{status} with {len} bytes")),
                Err(err) => {
                    fail(counted, format!("transport: {err}"));
                    continue 'connections;
                }
            }
        }
    }
    (latencies, errors, first_error)
}

async fn measure(addr: SocketAddr, path: &str, expected: usize, args: &Args) -> Figures {
    let measure_from = Instant::now() + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.duration);
    let mut workers = JoinSet::new();
    for _ in 0..args.connections {
        workers.spawn(worker(addr, path.to_owned(), expected, measure_from, end));
    }
    let (mut latencies, mut errors, mut first_error) = (Vec::new(), 0, None);
    while let Some(done) = workers.join_next().await {
        let (some, failed, first) = done.expect("a worker finishes");
        latencies.extend(some);
        errors += failed;
        first_error = first_error.or(first);
    }
    latencies.sort_unstable();
    let percentile = |p: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * latencies.len() as f64).ceil() as usize;
        f64::from(latencies[rank.clamp(1, latencies.len()) - 1]) / 1000.0
    };
    Figures {
        per_second: latencies.len() as f64 / args.duration,
        p50_ms: percentile(50.0),
        p99_ms: percentile(99.0),
        errors,
        first_error,
    }
}

/// The reference: the same bytes from memory, with only a content type.
async fn spawn_bare(bytes: Bytes) -> anyhow::Result<SocketAddr> {
    let router = Router::new().route(
        "/media/{*key}",
        get(move |Path(_key): Path<String>| {
            let bytes = bytes.clone();
            async move { ([(header::CONTENT_TYPE, "image/jpeg")], bytes) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(addr)
}

/// A stand-in thumbnail: a JPEG's first bytes, then noise.
fn thumbnail(size: usize) -> Bytes {
    let mut seed: u32 = 0x2545_F491;
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((4..size.max(4)).map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed as u8
    }));
    Bytes::from(bytes)
}

fn print(name: &str, figures: &Figures) {
    println!(
        "{name:<6} {:>10.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
        figures.per_second, figures.p50_ms, figures.p99_ms, figures.errors
    );
    if let Some(first) = &figures.first_error {
        println!("       first error: {first}");
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.connections == 0 || args.duration <= 0.0 || args.warmup < 0.0 {
        bail!("--connections and --duration must be positive, --warmup not negative");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "setup: {} connections, {}-byte object on kith's local disk store; build {profile}; \
         {cores} cores; servers and load generator in one process on one {cores}-thread \
         Tokio runtime; {} s warm-up, {} s measured each",
        args.connections, args.size, args.warmup, args.duration
    );

    let dir = tempfile::tempdir()?;
    let settings = Settings {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("kith.db").display()),
        media_dir: Some(dir.path().join("media")),
        listen: "127.0.0.1:0".parse()?,
        jwt_secret: Some(JWT_SECRET.into()),
        rate_limits: Switch::Off,
        shutdown_drain_millis: 0,
        ..Settings::default()
    };
    let app = Application::build(settings)
        .await
        .context("building kith")?;
    let kith = app.local_addr()?;
    let media = app.state().media.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let bytes = thumbnail(args.size);
    let dir_key = MediaPrefix::parse("photos/0190f3a2-bench")?;
    let key = MediaKey::content_addressed(&dir_key, "160", "jpg", &bytes)?;
    media.store().put(&key, bytes.clone(), "image/jpeg").await?;
    let url = media.url_for(&key).await;
    let bare = spawn_bare(bytes.clone()).await?;

    let bare_figures = measure(bare, &url, bytes.len(), &args).await;
    print("bare", &bare_figures);
    let kith_figures = measure(kith, &url, bytes.len(), &args).await;
    print("kith", &kith_figures);
    println!(
        "ratio  kith / bare = {:.2}",
        kith_figures.per_second / bare_figures.per_second
    );

    let _ = stop.send(());
    served.await??;
    Ok(())
}
