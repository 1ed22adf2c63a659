//! The capacity model of docs/OPERATIONS.md, checked at small scale: several
//! `sapha hub` processes on one nats-server, each with its share of clients,
//! all on one topic (the viewers of one sitting), events published at a live
//! sitting's rate. It reports, per hub and in total, the RSS each connection
//! added and the hub CPU per delivery, next to what the model predicts from
//! BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p sapha -p sapha-benches
//! ulimit -n 20000
//! target/release/capacity --hubs 4 --clients-per-hub 4000 --events 120 --rate 2
//! ```

use anyhow::{ensure, Context};
use clap::Parser;
use sapha_benches::load::{publish, Clients, Endpoint, Schedule, Target, Workload};
use sapha_benches::procfs;
use sapha_benches::servers::{Hub, Nats};
use sapha_benches::workload;
use std::time::{Duration, Instant};

/// The model's inputs (BENCHMARKS.md, "Current" table and "What limits throughput").
const MODEL_RSS_KIB_PER_CONNECTION: f64 = 7.41;
/// Hub CPU per delivery when each client's events go out one frame per write
/// (a live sitting's rate; per-bill scenario 2): 9.5 µs, about 6 of it kernel.
const MODEL_CPU_US_PER_DELIVERY: f64 = 9.5;

#[derive(Parser)]
#[command(about = "Checks the OPERATIONS.md capacity model with several hubs on this box")]
struct Args {
    /// Hub processes.
    #[arg(long, default_value_t = 4)]
    hubs: usize,
    /// Clients on each hub (the generator holds hubs × this many sockets).
    #[arg(long, default_value_t = 4000)]
    clients_per_hub: usize,
    /// Events published, all on the one topic every client follows.
    #[arg(long, default_value_t = 300)]
    events: u64,
    /// Events per second (a live sitting's pace, so most frames carry one event).
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let total_clients = args.hubs * args.clients_per_hub;
    let nofile = sapha_edge::raise_nofile_limit();
    ensure!(
        nofile >= total_clients as u64 + 200,
        "ulimit -n is {nofile}; {total_clients} client sockets need more"
    );
    let nats = Nats::start_with_websocket();
    // A 256 MiB stream: JetStream reserves the limit on disk up front.
    let client = async_nats::connect(nats.url()).await.context("connect")?;
    sapha_publisher::jetstream::ensure_stream(
        &async_nats::jetstream::new(client),
        &sapha_publisher::jetstream::StreamSettings {
            max_bytes: 256 * 1024 * 1024,
            ..Default::default()
        },
    )
    .await
    .context("creating the stream")?;
    let mut hubs = Vec::new();
    for _ in 0..args.hubs {
        hubs.push(Hub::start(&nats, &[]).await.context("starting a hub")?);
    }
    let filter = workload::bill_filter(0);
    let filters = vec![filter; args.clients_per_hub];
    let mut all = Vec::new();
    let mut rss_before = Vec::new();
    let mut rss_after = Vec::new();
    let began = Instant::now();
    for hub in &hubs {
        rss_before.push(procfs::rss_kib(hub.pid()));
        let endpoint = Endpoint {
            target: Target::Hub,
            port: hub.port,
            batch: true,
            server_pid: hub.pid(),
            nats_pid: Some(nats.pid()),
            nats_url: nats.url(),
        };
        let clients =
            Clients::open(&endpoint, &filters, args.events, Duration::from_secs(120)).await;
        ensure!(
            clients.failed == 0,
            "{} of {} clients failed to connect to the hub on {}",
            clients.failed,
            args.clients_per_hub,
            hub.port
        );
        all.push(clients);
    }
    // Let the connection burst settle, then read each hub's RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for hub in &hubs {
        rss_after.push(procfs::rss_kib(hub.pid()));
    }
    println!(
        "{} hubs x {} clients connected in {:.1} s",
        args.hubs,
        args.clients_per_hub,
        began.elapsed().as_secs_f64()
    );

    let cpu0: Vec<f64> = hubs.iter().map(|h| procfs::cpu_seconds(h.pid())).collect();
    let nats0 = procfs::cpu_seconds(nats.pid());
    let gen0 = procfs::cpu_seconds(std::process::id());
    let run_id = format!("cap{}", workload::now_ns() % 1_000_000);
    let w = Workload {
        filters: Vec::new(),
        events: (0..args.events)
            .map(|i| workload::event(&run_id, i, 0, 0))
            .collect(),
        schedule: Schedule::Rate(args.rate),
        drain: Duration::from_secs(30),
        run_id,
    };
    let wall = Instant::now();
    let (published, errors, _) = publish(&nats.url(), &w).await?;
    ensure!(errors == 0, "{errors} publish errors");
    let expected = published * total_clients as u64;
    let until = Instant::now() + w.drain;
    for c in &all {
        c.wait_for(published * args.clients_per_hub as u64, until)
            .await;
    }
    let wall_secs = wall.elapsed().as_secs_f64();
    let cpu: Vec<f64> = hubs
        .iter()
        .zip(&cpu0)
        .map(|(h, c0)| procfs::cpu_seconds(h.pid()) - c0)
        .collect();
    let nats_cpu = procfs::cpu_seconds(nats.pid()) - nats0;
    let gen_cpu = procfs::cpu_seconds(std::process::id()) - gen0;
    let delivered: u64 = all.iter().map(Clients::delivered).sum();

    println!("\n| hub | clients | RSS before MiB | RSS after MiB | KiB per connection | CPU s | deliveries | µs CPU per delivery |");
    println!("|---|---|---|---|---|---|---|---|");
    for (k, c) in all.iter().enumerate() {
        let per_conn = (rss_after[k] as f64 - rss_before[k] as f64) / args.clients_per_hub as f64;
        println!(
            "| {k} | {} | {:.1} | {:.1} | {per_conn:.2} | {:.2} | {} | {:.2} |",
            args.clients_per_hub,
            rss_before[k] as f64 / 1024.0,
            rss_after[k] as f64 / 1024.0,
            cpu[k],
            c.delivered(),
            cpu[k] * 1e6 / c.delivered().max(1) as f64
        );
    }
    let rss_added: f64 = rss_after
        .iter()
        .zip(&rss_before)
        .map(|(a, b)| *a as f64 - *b as f64)
        .sum();
    let per_conn = rss_added / total_clients as f64;
    let hub_cpu: f64 = cpu.iter().sum();
    let us_per_delivery = hub_cpu * 1e6 / delivered.max(1) as f64;
    println!(
        "\n{published} events at {} /s to {total_clients} clients: {delivered} of {expected} deliveries in {wall_secs:.1} s",
        args.rate
    );
    println!(
        "RSS per connection: measured {per_conn:.2} KiB, model {MODEL_RSS_KIB_PER_CONNECTION} KiB"
    );
    println!(
        "hub CPU per delivery: measured {us_per_delivery:.2} µs, model {MODEL_CPU_US_PER_DELIVERY} µs (at most)"
    );
    println!(
        "hub CPU {hub_cpu:.2} s (model {:.2} s), nats-server {nats_cpu:.2} s, generator {gen_cpu:.2} s, wall {wall_secs:.1} s",
        MODEL_CPU_US_PER_DELIVERY * expected as f64 / 1e6
    );
    for c in all {
        let tallies = c.close().await;
        let closed = tallies.iter().filter(|t| t.closed.is_some()).count();
        if closed > 0 {
            println!("{closed} clients were closed during the run");
        }
    }
    ensure!(
        delivered == expected,
        "lost deliveries: {delivered} of {expected}"
    );
    Ok(())
}
