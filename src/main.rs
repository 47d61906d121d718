//! The `kith` command: `serve` (the default; `--demo` fills an empty database), `migrate`,
//! `schema`, `seed`, `events` (webhook dead letters).

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use kith::{app::Application, config::Settings, domain::outbox, graphql, telemetry};
use migration::{Migrator, MigratorTrait};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kith",
    version,
    about = "One GraphQL server for social, dating and messaging apps"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve`'s options, for `kith` alone (which serves).
    #[command(flatten)]
    serve: ServeOptions,
}

#[derive(Args)]
struct ServeOptions {
    /// Fill an empty database with demo data first (alice, bob, carol, dave
    /// and a few hundred more; the password is printed) and print a ready
    /// Authorization header for alice.
    #[arg(long, env = "KITH_DEMO")]
    demo: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GraphQL, GraphiQL, health and metrics (the default).
    Serve(ServeOptions),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Add demo users and a friend graph (every password: kith-demo-password).
    Seed {
        /// How many users to add.
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        /// Average friends per user.
        #[arg(long, default_value_t = 20)]
        friends: usize,
        /// Random seed, for a reproducible graph.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Webhook deliveries that ran out of tries (dead letters): list them,
    /// or put them back to be delivered.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// List dead letters: event id, type, URL, tries, last error, when it
    /// failed.
    Failed,
    /// Put dead letters back to pending (tries counted afresh, due now);
    /// a running kith delivers them.
    Replay {
        /// The event whose dead deliveries to replay (`Kith-Event-Id`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        event_id: Option<uuid::Uuid>,
        /// Replay every dead letter.
        #[arg(long)]
        all: bool,
    },
}

/// Runtime threads' stacks. Every document's nesting is bounded before it is
/// parsed (`graphql::guard`), so this is a margin, not the defence: 2 MiB, the
/// default, is what one overflowing request once used up.
const THREAD_STACK_BYTES: usize = 8 << 20;

fn main() -> ExitCode {
    // Settings from a `.env` in the working directory, as `.env.example`
    // suggests; variables already in the environment win.
    let dotenv = dotenvy::from_path(".env");
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            if let Err(err) = &dotenv
                && !err.not_found()
            {
                anyhow::bail!("reading .env: {err}");
            }
            runtime.block_on(run())
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        // One line that names what to fix (the setting, the address), with
        // its causes after colons: a start-up error is not a crash, so no
        // backtrace.
        Err(err) => {
            eprintln!("kith: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", graphql::sdl());
        return Ok(());
    }
    let settings = Settings::load()?;
    telemetry::init(settings.log_format);
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Migrate => {
            let db = kith::app::connect_database(&settings).await?;
            kith::app::migrate(&db).await?;
            tracing::info!("migrations applied");
        }
        Command::Serve(ServeOptions { demo }) => {
            let app = Application::build(settings).await?;
            if demo {
                announce_demo(kith::seed::demo::fill(app.state()).await?);
            }
            let addr = app.local_addr()?;
            tracing::info!("kith serving on http://{addr} (GraphiQL at http://{addr}/graphiql)");
            app.run_until_stopped(shutdown_signal()).await?;
            tracing::info!("kith stopped");
        }
        Command::Seed {
            users,
            friends,
            seed,
        } => {
            let db = kith::app::connect_database(&settings).await?;
            Migrator::up(&db, None).await?;
            let hasher = kith::auth::PasswordHasher::new(1).await?;
            let options = kith::seed::SeedOptions {
                users,
                friends,
                seed,
            };
            let report = kith::seed::run(&db, &hasher, options).await?;
            println!(
                "seeded {} users and {} friendships in {:.1} s; every password is {:?}",
                report.users,
                report.friendships,
                report.seconds,
                kith::seed::DEMO_PASSWORD
            );
        }
        Command::Events { command } => {
            let db = kith::app::connect_database(&settings).await?;
            match command {
                EventsCommand::Failed => print_dead_letters(&outbox::dead_letters(&db).await?),
                EventsCommand::Replay { event_id, all } => {
                    let which = match (event_id, all) {
                        (Some(id), false) => outbox::Replay::Event(id),
                        _ => outbox::Replay::All,
                    };
                    let replayed = outbox::replay(&db, which).await?;
                    println!(
                        "replayed {replayed} {}",
                        if replayed == 1 {
                            "delivery"
                        } else {
                            "deliveries"
                        }
                    );
                }
            }
        }
        Command::Schema => unreachable!("handled above"),
    }
    Ok(())
}

/// One dead letter a line, in columns, oldest failure first.
fn print_dead_letters(dead: &[outbox::DeadLetter]) {
    if dead.is_empty() {
        println!("no dead letters");
        return;
    }
    let rows: Vec<[String; 6]> = dead
        .iter()
        .map(|letter| {
            [
                letter.event_id.to_string(),
                letter.event_type.clone().unwrap_or_else(|| "?".into()),
                letter.url.clone(),
                letter.attempts.to_string(),
                letter.last_error.clone().unwrap_or_default(),
                letter
                    .failed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ]
        })
        .collect();
    let header = [
        "EVENT ID",
        "TYPE",
        "URL",
        "ATTEMPTS",
        "LAST ERROR",
        "FAILED AT",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|title| title.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

fn announce_demo(report: kith::seed::demo::DemoReport) {
    if report.filled {
        tracing::info!(
            "demo data: alice, bob, carol, dave and {} generated users; every password is {:?}",
            kith::seed::demo::GENERATED_USERS,
            kith::seed::DEMO_PASSWORD
        );
    } else {
        tracing::info!("demo data: the database already has users, so it was left as it is");
    }
    match report.alice_authorization {
        Some(header) => tracing::info!(
            "signed in as alice; GraphiQL headers: {{\"Authorization\": \"{header}\"}}"
        ),
        None => tracing::info!("no demo user alice in this database"),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
