//! Sign-in latency through the real server, per way of signing in: a
//! password `login` (the reference) next to the providers' sign-ins, each
//! provider played by a local test double on loopback.
//!
//! ```text
//! cargo run --release --example sign_in_bench -- [--rounds 200] [--warmup 10]
//! ```
//!
//! kith runs in this process (`Application::build`, a fresh SQLite file in a
//! temporary directory, rate limits off, every provider configured) next to
//! the tests' doubles (`tests/api/sign_in/doubles.rs`): a fake Twilio that
//! records the messages it is asked to send, and a fake Graph API that
//! answers `debug_token` and `me` for the tokens minted here. One reqwest
//! client with one keep-alive connection sends one request at a time: the
//! figures are latency, not throughput. Each figure runs `--warmup` rounds,
//! then `--rounds` measured ones, and prints p50, p99 and mean of a round's
//! time from request to answer. What is prepared on the client side (asking
//! for the code the timed `loginWithSms` redeems, signing `initData`, minting
//! a Facebook token in the double) is outside the timed part unless the
//! figure's name says it is in. Figures:
//! - `login (password)`: `login` with username and password; one Argon2id
//!   verification (19 MiB, 2 passes) plus opening a session.
//! - `loginWithSms, code already sent`: redeeming a code for a number that
//!   already has an account (the same number every round: the steady state).
//! - `requestSmsCode alone, known number`: storing a new code and the call
//!   to the fake Twilio that sends it.
//! - `sms flow, known number`: `requestSmsCode`, reading the code off the
//!   double, `loginWithSms`, timed together.
//! - `sms flow, new number`: the same with a fresh number every round, so
//!   the sign-in creates the account, its identity and its first session.
//! - `loginWithTelegram, known user` / `new user`: freshly signed `initData`
//!   for one Telegram user every round, or a new user every round (account
//!   creation). No call leaves the server: `initData` is checked by HMAC.
//! - `loginWithFacebook, known user` / `new user`: a fresh token every round,
//!   for one Facebook user or a new one; the server makes two Graph API
//!   calls (`debug_token`, then `me`) to the double before signing in.
//!
//! See `bench/README.md`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use kith::{
    app::Application,
    config::{Settings, SmsSenderKind, Switch},
};
use serde_json::{Value, json};

// The tests' provider doubles: a fake Twilio and a fake Graph API on
// loopback. Their failure modes go unused here.
#[allow(dead_code)]
#[path = "../tests/api/sign_in/doubles.rs"]
mod doubles;

use doubles::{
    FACEBOOK_APP_ID, FACEBOOK_APP_SECRET, FakeGraph, FakeTwilio, SMS_FROM, TELEGRAM_BOT_TOKEN,
    TWILIO_SID, TWILIO_TOKEN,
};

// The same allocator as the `kith` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "kith sign-in benchmark")]
struct Args {
    /// Measured rounds per figure.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Unmeasured rounds before each figure's measured ones.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
}

const PASSWORD: &str = "correct horse battery";
/// What every sign-in asks for in its answer: the payload a client reads.
const AUTH_FIELDS: &str = "accessToken refreshToken user { id username }";
/// The number signed in every round of the steady-state SMS figures.
const KNOWN_PHONE: &str = "+14155550100";
const KNOWN_TELEGRAM_ID: i64 = 279_058_397;
const KNOWN_FACEBOOK_ID: &str = "10150000000000001";

struct Kith {
    url: String,
    client: reqwest::Client,
    twilio: FakeTwilio,
    graph: FakeGraph,
    stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// kith with every provider configured at fresh doubles (as the tests'
/// `with_providers`), and one password account.
async fn start() -> anyhow::Result<Kith> {
    let twilio = FakeTwilio::start().await;
    let graph = FakeGraph::start().await;
    let dir = tempfile::tempdir()?;
    let settings = Settings {
        database_url: format!("sqlite://{}?mode=rwc", dir.path().join("kith.db").display()),
        listen: "127.0.0.1:0".parse()?,
        jwt_secret: Some("kith-bench-7Hq2Lz0Rw5Yx3Nc7Vb1Hm4Jd6Kp9Gt".into()),
        rate_limits: Switch::Off,
        sms_sender: SmsSenderKind::Twilio,
        twilio_base_url: twilio.url.clone(),
        twilio_account_sid: Some(TWILIO_SID.into()),
        twilio_auth_token: Some(TWILIO_TOKEN.into()),
        sms_from: Some(SMS_FROM.into()),
        telegram_bot_token: Some(TELEGRAM_BOT_TOKEN.into()),
        facebook_app_id: Some(FACEBOOK_APP_ID.into()),
        facebook_app_secret: Some(FACEBOOK_APP_SECRET.into()),
        facebook_graph_url: graph.url.clone(),
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
    let kith = Kith {
        url,
        client: reqwest::Client::new(),
        twilio,
        graph,
        stop,
        _dir: dir,
    };
    kith.call(
        "register",
        "mutation($password: String!) { register(input: { username: \"bench_password\", password: $password }) { accessToken } }",
        json!({ "password": PASSWORD }),
    )
    .await?;
    Ok(kith)
}

impl Kith {
    /// One GraphQL request, timed from sending to the whole answer read;
    /// an error unless `field` answered an access token.
    async fn call(&self, field: &str, query: &str, variables: Value) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let answer: Value = self
            .client
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?
            .json()
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(
            answer["data"][field]["accessToken"].is_string(),
            "{field} refused: {answer}"
        );
        Ok(took)
    }

    async fn login(&self) -> anyhow::Result<Duration> {
        self.call(
            "login",
            &format!(
                "mutation($password: String!) {{ login(input: {{ identifier: \"bench_password\", password: $password }}) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "password": PASSWORD }),
        )
        .await
    }

    /// `requestSmsCode`, then the code off the fake Twilio.
    async fn request_code(&self, phone: &str) -> anyhow::Result<(Duration, String)> {
        let started = Instant::now();
        let answer: Value = self
            .client
            .post(&self.url)
            .json(&json!({
                "query": "mutation($phone: String!) { requestSmsCode(input: { phone: $phone }) { phone expiresAt } }",
                "variables": { "phone": phone },
            }))
            .send()
            .await?
            .json()
            .await?;
        let took = started.elapsed();
        anyhow::ensure!(
            answer["data"]["requestSmsCode"]["phone"] == phone,
            "requestSmsCode refused: {answer}"
        );
        Ok((took, self.twilio.code_for(phone)))
    }

    async fn login_with_sms(&self, phone: &str, code: &str) -> anyhow::Result<Duration> {
        self.call(
            "loginWithSms",
            &format!(
                "mutation($phone: String!, $code: String!) {{ loginWithSms(input: {{ phone: $phone, code: $code }}) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "phone": phone, "code": code }),
        )
        .await
    }

    /// The whole SMS flow, timed: request, read the code, sign in.
    async fn sms_flow(&self, phone: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let (_, code) = self.request_code(phone).await?;
        self.login_with_sms(phone, &code).await?;
        Ok(started.elapsed())
    }

    async fn login_with_telegram(&self, user_id: i64) -> anyhow::Result<Duration> {
        let init_data = init_data(user_id, &format!("tg_{user_id}"));
        self.call(
            "loginWithTelegram",
            &format!(
                "mutation($initData: String!) {{ loginWithTelegram(input: {{ initData: $initData }}) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "initData": init_data }),
        )
        .await
    }

    async fn login_with_facebook(&self, user_id: &str) -> anyhow::Result<Duration> {
        let token = self.graph.token_for(user_id, "Face Book");
        self.call(
            "loginWithFacebook",
            &format!(
                "mutation($token: String!) {{ loginWithFacebook(input: {{ accessToken: $token }}) {{ {AUTH_FIELDS} }} }}"
            ),
            json!({ "token": token }),
        )
        .await
    }
}

/// WebApp `initData` for a Telegram user, signed now with the bot token, as
/// the tests' `init_data` signs it.
fn init_data(user_id: i64, username: &str) -> String {
    let user = json!({
        "id": user_id, "first_name": "Tele", "last_name": "Gram",
        "username": username, "language_code": "en",
        "photo_url": format!("https://t.me/i/userpic/320/{username}.jpg"),
    })
    .to_string();
    let auth_date = chrono::Utc::now().timestamp().to_string();
    kith::infra::identity_providers::telegram::sign_init_data(
        TELEGRAM_BOT_TOKEN,
        &[
            ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"),
            ("user", &user),
            ("auth_date", &auth_date),
        ],
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Runs `round` for the warm-up and then the measured rounds, one at a
/// time, and prints the figure. Each round gets its own index (warm-up
/// first), for figures that need a new number or user every round; it
/// answers the time that counts.
async fn figure(
    name: &str,
    args: &Args,
    mut round: impl AsyncFnMut(usize) -> anyhow::Result<Duration>,
) -> anyhow::Result<()> {
    for index in 0..args.warmup {
        round(index)
            .await
            .with_context(|| format!("{name}, warm-up"))?;
    }
    let mut times = Vec::with_capacity(args.rounds);
    for index in args.warmup..args.warmup + args.rounds {
        times.push(round(index).await.with_context(|| name.to_owned())?);
    }
    let mean = times.iter().sum::<Duration>() / u32::try_from(times.len().max(1))?;
    times.sort_unstable();
    println!(
        "{name:<40} rounds {:>4}   p50 {:>7.2} ms   p99 {:>7.2} ms   mean {:>7.2} ms",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(mean),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    println!(
        "sign-in latency, one request at a time over one keep-alive connection; \
         {} build, {} cores, SQLite, providers on local doubles",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(1, usize::from)
    );
    let kith = start().await?;

    // The reference: Argon2id.
    figure("login (password)", &args, async |_| kith.login().await).await?;

    // SMS: the known number's account is made by its first sign-in here.
    kith.sms_flow(KNOWN_PHONE).await?;
    figure("loginWithSms, code already sent", &args, async |_| {
        let (_, code) = kith.request_code(KNOWN_PHONE).await?;
        kith.login_with_sms(KNOWN_PHONE, &code).await
    })
    .await?;
    figure("requestSmsCode alone, known number", &args, async |_| {
        Ok(kith.request_code(KNOWN_PHONE).await?.0)
    })
    .await?;
    figure("sms flow, known number", &args, async |_| {
        kith.sms_flow(KNOWN_PHONE).await
    })
    .await?;
    figure("sms flow, new number", &args, async |index| {
        kith.sms_flow(&format!("+4477009{index:05}")).await
    })
    .await?;

    // Telegram: no call leaves the server.
    kith.login_with_telegram(KNOWN_TELEGRAM_ID).await?;
    figure("loginWithTelegram, known user", &args, async |_| {
        kith.login_with_telegram(KNOWN_TELEGRAM_ID).await
    })
    .await?;
    figure("loginWithTelegram, new user", &args, async |index| {
        kith.login_with_telegram(1_000_000 + i64::try_from(index)?)
            .await
    })
    .await?;

    // Facebook: two Graph API calls to the double per sign-in.
    kith.login_with_facebook(KNOWN_FACEBOOK_ID).await?;
    figure("loginWithFacebook, known user", &args, async |_| {
        kith.login_with_facebook(KNOWN_FACEBOOK_ID).await
    })
    .await?;
    figure("loginWithFacebook, new user", &args, async |index| {
        kith.login_with_facebook(&format!("10160000{index:09}"))
            .await
    })
    .await?;

    let _ = kith.stop.send(());
    Ok(())
}
