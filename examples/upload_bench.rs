//! Upload benchmark through the real server: GraphQL multipart requests to
//! `uploadAttachment` over HTTP, each processed into every size and stored on
//! the local disk, as an app's uploads are.
//!
//! ```text
//! cargo run --release --example upload_bench -- [--uploads 24]
//! ```
//!
//! kith runs in this process (`Application::build`, a fresh SQLite file and
//! media directory in a temporary directory, rate limits off). The upload is
//! made here: a 4000 × 3000 JPEG (quality 90) of gradients under per-pixel
//! noise, about what a 12 MP phone photo costs to decode and scale. Figures:
//! - `throughput`: 4 uploaders, each sending its next upload as soon as the
//!   last is answered, `--uploads` in all: uploads per second, and each
//!   upload's time from request to answer (p50/p99).
//! - `memory`: 8 uploads at once, with `KITH_MEDIA_CONCURRENCY` at its
//!   default (one per core) and then at 8; the process's peak resident memory
//!   (VmHWM, reset before each phase through /proc/self/clear_refs), which
//!   includes the 8 request bodies held by the server and by the clients.
//!   See `bench/README.md`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use kith::{
    app::Application,
    config::{Settings, Switch},
};
use serde_json::{Value, json};

// The tests' picture generator: gradients under noise, JPEG quality 90.
#[path = "../tests/fixtures/images.rs"]
mod images;

// The same allocator as the `kith` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "kith upload benchmark")]
struct Args {
    /// Uploads in the throughput phase, shared by 4 uploaders.
    #[arg(long, default_value_t = 24)]
    uploads: usize,
}

const UPLOADERS: usize = 4;
const AT_ONCE: usize = 8;
const UPLOAD: &str = "mutation($file: Upload!) { uploadAttachment(file: $file) { id width } }";

fn status_kib(field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .with_context(|| field.to_owned())
}

/// Resets VmHWM to the current resident size (Linux 4.0+).
fn reset_peak() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("clear_refs")
}

struct Kith {
    url: String,
    token: String,
    client: reqwest::Client,
    stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(media_concurrency: usize) -> anyhow::Result<Kith> {
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("kith.db").display()),
        listen: "127.0.0.1:0".parse()?,
        jwt_secret: Some("kith-bench-7Hq2Lz0Rw5Yx3Nc7Vb1Hm4Jd6Kp9Gt".into()),
        rate_limits: Switch::Off,
        media_concurrency,
        ..Settings::default()
    };
    let app = Application::build(settings)
        .await
        .context("building kith")?;
    let url = format!("http://{}/graphql", app.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let registered: Value = client
        .post(&url)
        .json(&json!({
            "query": "mutation { register(input: { username: \"uploader\", password: \"correct horse battery\" }) { accessToken } }"
        }))
        .send()
        .await?
        .json()
        .await?;
    let token = registered["data"]["register"]["accessToken"]
        .as_str()
        .with_context(|| format!("registering: {registered}"))?
        .to_owned();
    Ok(Kith {
        url,
        token,
        client,
        stop,
        _dir: dir,
    })
}

impl Kith {
    /// One upload, start to answer.
    async fn upload(&self, jpeg: &[u8]) -> anyhow::Result<Duration> {
        let boundary = "kith-bench-boundary";
        let operations = json!({ "query": UPLOAD, "variables": { "file": null } });
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\":[\"variables.file\"]}}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"photo.jpg\"\r\n\
             Content-Type: image/jpeg\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(jpeg);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let started = Instant::now();
        let answer: Value = self
            .client
            .post(&self.url)
            .bearer_auth(&self.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await?
            .json()
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(
            answer["data"]["uploadAttachment"]["width"] == 1280,
            "upload refused: {answer}"
        );
        Ok(took)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let jpeg = images::jpeg(&images::photo(4000, 3000));
    println!(
        "upload: 4000 x 3000 JPEG, {:.1} MiB; {} cores",
        jpeg.len() as f64 / (1024.0 * 1024.0),
        std::thread::available_parallelism().map_or(1, usize::from)
    );

    // Throughput: 4 uploaders in a closed loop.
    let kith = std::sync::Arc::new(start(0).await?);
    kith.upload(&jpeg).await?; // warm-up
    let jpeg = std::sync::Arc::new(jpeg);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for uploader in 0..UPLOADERS {
        let (kith, jpeg) = (kith.clone(), jpeg.clone());
        let share = args.uploads / UPLOADERS + usize::from(uploader < args.uploads % UPLOADERS);
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(share);
            for _ in 0..share {
                times.push(kith.upload(&jpeg).await?);
            }
            anyhow::Ok(times)
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await??);
    }
    let elapsed = started.elapsed();
    times.sort_unstable();
    println!(
        "throughput: {} uploads by {UPLOADERS} uploaders in {:.2} s: {:.2} uploads/s; \
         per upload p50 {:.0} ms, p99 {:.0} ms",
        times.len(),
        elapsed.as_secs_f64(),
        times.len() as f64 / elapsed.as_secs_f64(),
        percentile(&times, 0.5).as_secs_f64() * 1000.0,
        percentile(&times, 0.99).as_secs_f64() * 1000.0,
    );
    if let Ok(kith) = std::sync::Arc::try_unwrap(kith) {
        let _ = kith.stop.send(());
    }

    // Memory: 8 at once, bounded by the processor's permits or not.
    for (label, concurrency) in [("default permits (one per core)", 0), ("8 permits", 8)] {
        let kith = std::sync::Arc::new(start(concurrency).await?);
        kith.upload(&jpeg).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        reset_peak()?;
        let before = status_kib("VmRSS:")? / 1024.0;
        let started = Instant::now();
        let uploads: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                let (kith, jpeg) = (kith.clone(), jpeg.clone());
                tokio::spawn(async move { kith.upload(&jpeg).await })
            })
            .collect();
        for upload in uploads {
            upload.await??;
        }
        let peak = status_kib("VmHWM:")? / 1024.0;
        println!(
            "memory, {AT_ONCE} uploads at once, {label}: {:.2} s, resident {before:.0} MiB before, \
             peak {peak:.0} MiB (+{:.0} MiB)",
            started.elapsed().as_secs_f64(),
            peak - before
        );
        if let Ok(kith) = std::sync::Arc::try_unwrap(kith) {
            let _ = kith.stop.send(());
        }
    }
    Ok(())
}
