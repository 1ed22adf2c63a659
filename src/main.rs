//! `sapha`: one binary, one subcommand per job. All logic lives in the library
//! crates; this file only parses flags and wires them together.

mod demo;
mod hub;
mod probe;
mod publish;
mod subscribe;

use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;

#[derive(Parser)]
#[command(
    name = "sapha",
    version,
    about = "Real-time event streaming for a legislature"
)]
struct Cli {
    /// How log lines on stderr look: `text` for people, `json` (one object a
    /// line, with `timestamp`, `level`, `target` and `fields`) for log
    /// pipelines. Text has ANSI colours only when stderr is a terminal. The
    /// level is set with `RUST_LOG` (default `info`; e.g.
    /// `RUST_LOG=warn,sapha_hub=debug`).
    #[arg(long, global = true, env = "SAPHA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// Whether logs are JSON lines, so that a subcommand's closing report goes
/// through tracing rather than as a bare line on stderr.
static LOG_JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

pub(crate) fn log_is_json() -> bool {
    LOG_JSON.get().copied().unwrap_or(false)
}

/// Installs the tracing subscriber: level from `RUST_LOG` (default `info`),
/// to stderr, text or JSON. Colours only on a terminal, never into a file.
fn init_logs(format: LogFormat) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = LOG_JSON.set(format == LogFormat::Json);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Publish NDJSON events from a file (or `-` for stdin) into JetStream.
    Publish(publish::PublishArgs),
    /// Serve the HTTP ingest endpoint (`POST /v1/events`).
    Ingest(publish::IngestArgs),
    /// Replay scenario files into JetStream at real speed, `--speed N` or `--speed max`.
    Play(publish::PlayArgs),
    /// Fan the JetStream stream out to WebSocket and SSE clients.
    Hub(hub::HubArgs),
    /// Publisher, hub and scenario player in one process, without NATS.
    Demo(demo::DemoArgs),
    /// Print live events as lines for people (Thai or English), or JSON.
    Tail(subscribe::TailArgs),
    /// Write the stream to rotated NDJSON files and/or a signed webhook, exactly once.
    Sink(subscribe::SinkArgs),
    /// Notify followers of each stage change of their bills: Web Push, LINE, webhook.
    Notify(subscribe::NotifyArgs),
    /// GET a health URL and exit 0 on 2xx: a container HEALTHCHECK without curl.
    Probe(probe::ProbeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match cli.command {
        Command::Publish(args) => publish::publish(args).await,
        Command::Ingest(args) => publish::ingest(args).await,
        Command::Play(args) => publish::play(args).await,
        Command::Hub(args) => hub::hub(args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Tail(args) => subscribe::tail(args).await,
        Command::Sink(args) => subscribe::sink(args).await,
        Command::Notify(args) => subscribe::notify(args).await,
        Command::Probe(args) => probe::probe(args).await,
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
