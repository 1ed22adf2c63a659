//! `sapha`: one binary, one subcommand per job. All logic lives in the library
//! crates; this file only parses flags and wires them together.

mod bus;
mod demo;
mod publish;
mod subscribe;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "sapha",
    version,
    about = "Real-time event streaming for a legislature"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish NDJSON events from a file (or `-` for stdin) into JetStream.
    Publish(publish::PublishArgs),
    /// Serve the HTTP ingest endpoint (`POST /v1/events`).
    Ingest(publish::IngestArgs),
    /// Replay scenario files into JetStream at real speed or `--speed N`.
    Play(publish::PlayArgs),
    /// Fan the JetStream stream out to WebSocket and SSE clients.
    Hub(sapha_hub::HubArgs),
    /// Publisher, hub and scenario player in one process, without NATS.
    Demo(demo::DemoArgs),
    /// Print live events as lines for people (Thai or English), or JSON.
    Tail(subscribe::TailArgs),
    /// Write the stream to rotated NDJSON files and/or a signed webhook, exactly once.
    Sink(subscribe::SinkArgs),
    /// Notify followers of each stage change of their bills: Web Push, LINE, webhook.
    Notify(subscribe::NotifyArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Publish(args) => publish::publish(args).await,
        Command::Ingest(args) => publish::ingest(args).await,
        Command::Play(args) => publish::play(args).await,
        Command::Hub(args) => hub(args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Tail(args) => subscribe::tail(args).await,
        Command::Sink(args) => subscribe::sink(args).await,
        Command::Notify(args) => subscribe::notify(args).await,
    }
}

async fn hub(args: sapha_hub::HubArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let config = args.load().context("loading the hub config")?;
    let listener = sapha_hub::bind(&config)
        .await
        .with_context(|| format!("binding the hub on {}", config.listen))?;
    tracing::info!(listen = %config.listen, reuse_port = config.reuse_port, stream = %config.nats.stream, "hub listening");
    sapha_hub::run_with_nats(config, listener, shutdown_signal()).await
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
