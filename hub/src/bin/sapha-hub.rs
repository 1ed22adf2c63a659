//! `sapha-hub`: the hub on its own (the umbrella `sapha hub` does the same).

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Fan Sapha's event stream out to WebSocket and SSE clients")]
struct Cli {
    #[command(flatten)]
    hub: sapha_hub::HubArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let config = cli.hub.load().context("loading the hub config")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    tracing::info!(listen = %config.listen, stream = %config.nats.stream, "sapha hub");
    sapha_hub::run_with_nats(config, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
