//! `sapha demo`: the publisher, the hub and the scenario player in one process,
//! on an in-process bus instead of NATS. It runs the same pipeline and the same
//! hub as production; only the log differs (see `bus.rs`).

use crate::bus::MemoryBus;
use anyhow::Context;
use clap::Args;
use sapha_publisher::file::publish_ndjson;
use sapha_publisher::ingest::{self, IngestConfig, SharedTokens, Tokens};
use sapha_publisher::metrics::Metrics;
use sapha_publisher::pipeline::{Pipeline, RetryPolicy};
use sapha_publisher::player::{Pacer, Pacing};
use std::sync::Arc;
use std::time::Duration;

/// The scenarios the demo replays, shipped inside the binary.
const SCENARIOS: &[(&str, &str)] = &[
    (
        "joint-2564-09-10",
        include_str!("../scenarios/joint-2564-09-10.ndjson"),
    ),
    (
        "senate-2566-02-28",
        include_str!("../scenarios/senate-2566-02-28.ndjson"),
    ),
    (
        "bills-generated",
        include_str!("../scenarios/bills-generated.ndjson"),
    ),
];

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the hub listens (dashboard, /v1/ws, /v1/sse, /metrics).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Where the ingest endpoint listens (POST /v1/events).
    #[arg(long, default_value = "127.0.0.1:8081")]
    ingest_listen: String,
    /// Speed-up over real time for the replayed sittings; 0 replays at once.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Longest wait between two replayed events, in seconds.
    #[arg(long, default_value_t = 2.0)]
    max_gap_secs: f64,
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let bus = MemoryBus::default();
    let pipeline = Arc::new(Pipeline::new(
        bus.clone(),
        RetryPolicy::default(),
        10_000,
        Arc::new(Metrics::default()),
    ));

    let hub_args = sapha_hub::HubArgs {
        listen: Some(args.listen.parse().context("--listen")?),
        ..Default::default()
    };
    let config = hub_args.load().context("loading the hub config")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding the hub on {}", config.listen))?;
    let hub_addr = listener.local_addr()?;
    let hub = tokio::spawn(sapha_hub::run(
        config,
        listener,
        bus.clone(),
        crate::shutdown_signal(),
    ));

    let token = format!("demo-{:032x}", rand::random::<u128>());
    let tokens =
        SharedTokens::new(Tokens::parse(&format!("demo:{token}")).map_err(anyhow::Error::msg)?);
    let ingest_listener = tokio::net::TcpListener::bind(&args.ingest_listen)
        .await
        .with_context(|| format!("binding ingest on {}", args.ingest_listen))?;
    let ingest_addr = ingest_listener.local_addr()?;
    tokio::spawn(ingest::serve(
        ingest_listener,
        pipeline.clone(),
        IngestConfig::new(tokens),
        std::future::pending(),
    ));

    println!("Sapha demo: replaying the joint sitting of 10 Sep 2021, Senate sitting no. 28 of 28 Feb 2023");
    println!(
        "and 200 generated bill histories, at {}x real time.\n",
        args.speed
    );
    println!("  dashboard   http://{hub_addr}/");
    println!("  websocket   websocat 'ws://{hub_addr}/v1/ws?topics=sitting.>'");
    println!("  sse         curl -N 'http://{hub_addr}/v1/sse?topics=bill.*.stage'");
    println!("  metrics     http://{hub_addr}/metrics");
    println!("  ingest      curl -H 'authorization: Bearer {token}' -H 'content-type: application/json' \\");
    println!("                   --data @event.json http://{ingest_addr}/v1/events\n");
    println!("Ctrl-C stops.");

    let pacing = Pacing {
        speed: args.speed,
        max_gap: Duration::from_secs_f64(args.max_gap_secs),
    };
    for (name, text) in SCENARIOS {
        let pipeline = pipeline.clone();
        tokio::spawn(async move {
            let report = publish_ndjson(
                &pipeline,
                text.as_bytes(),
                None,
                Some(Pacer::new(pacing)),
                "scenario",
                std::future::pending(),
            )
            .await;
            match report {
                Ok(report) => tracing::info!(scenario = name, %report, "scenario replayed"),
                Err(e) => tracing::error!(scenario = name, error = %e, "scenario failed"),
            }
        });
    }
    hub.await
        .context("the hub task")?
        .context("running the hub")?;
    Ok(())
}
