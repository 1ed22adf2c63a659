//! `fanout`: the fan-out load generator. Runs one scenario of issue 4 against
//! `sapha hub` (a separate release process) and, as the baseline, nats-server's
//! own WebSocket listener, and prints a Markdown table of medians.
//!
//! ```sh
//! cargo build --release -p sapha -p sapha-benches
//! scripts/bench.sh broadcast        # or per-bill, max-rate, idle, sitting
//! ```

use anyhow::Context;
use clap::{Parser, ValueEnum};
use sapha_benches::load::Target;
use sapha_benches::scenarios::{self, bills_workload};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    /// 1,000 clients on one topic.
    Broadcast,
    /// 5,000 clients over 500 bills.
    PerBill,
    /// The highest rate with p99 <= 100 ms and no loss (step search).
    MaxRate,
    /// Idle connections up to the fd limit: RSS per connection.
    Idle,
    /// A sitting replayed (time scaled) to 10,000 clients: latency only.
    Sitting,
}

#[derive(Parser, Debug)]
#[command(about = "Fan-out load generator: sapha hub vs nats-server's WebSocket listener")]
struct Cli {
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Which targets, comma-separated: hub (JSON frames), hub-proto
    /// (protobuf frames), nats; `both` is hub,nats and `all` all three. Runs
    /// alternate between them.
    #[arg(long, default_value = "both")]
    targets: String,
    /// Runs per target (the table shows medians).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Clients (default: the scenario's).
    #[arg(long)]
    clients: Option<usize>,
    /// Topics (bills) the clients spread over (default: the scenario's).
    #[arg(long)]
    topics: Option<usize>,
    /// Events to publish (default: the scenario's).
    #[arg(long)]
    events: Option<u64>,
    /// Events per second offered (default: the scenario's; 0 = as fast as acks allow).
    #[arg(long)]
    rate: Option<f64>,
    /// max-rate: the first rate tried, events/s.
    #[arg(long, default_value_t = 20.0)]
    start_rate: f64,
    /// max-rate: seconds of publishing per step.
    #[arg(long, default_value_t = 5.0)]
    step_secs: f64,
    /// max-rate: the p99 a step must stay under, ms.
    #[arg(long, default_value_t = 100.0)]
    p99_limit_ms: f64,
    /// sitting: the scenario file.
    #[arg(long, default_value = "scenarios/joint-2564-09-10.ndjson")]
    file: PathBuf,
    /// sitting: time is divided by this (1 = real speed).
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// sitting: longest gap between two events, seconds (the bill's months).
    #[arg(long, default_value_t = 2.0)]
    max_gap_secs: f64,
    /// Extra hub settings, `key=value` (repeatable), e.g. `limits.queue_frames=1024`.
    #[arg(long = "hub-set")]
    hub_set: Vec<String>,
    /// Hub clients take one event per frame (no `?batch=true`).
    #[arg(long)]
    no_batch: bool,
    /// idle: hub processes sharing one port with `reuse_port` (default 1:
    /// the usual one hub against the baseline).
    #[arg(long, default_value_t = 1)]
    hubs: usize,
    /// Pinned run, `SERVER,GENERATOR` CPUs (e.g. `0,1`): the server under test
    /// on the first, this generator and the hub's JetStream server on the second.
    #[arg(long, value_parser = parse_pin)]
    pin: Option<scenarios::Pinning>,
    /// Also write every run as a JSON line to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn parse_targets(s: &str) -> anyhow::Result<Vec<Target>> {
    let names = match s {
        "both" => "hub,nats",
        "all" => "hub,hub-proto,nats",
        list => list,
    };
    names
        .split(',')
        .map(|name| match name.trim() {
            "hub" => Ok(Target::Hub),
            "hub-proto" => Ok(Target::HubProto),
            "nats" => Ok(Target::Nats),
            other => anyhow::bail!("--targets: hub, hub-proto, nats, both or all, not {other}"),
        })
        .collect()
}

fn parse_pin(s: &str) -> Result<scenarios::Pinning, String> {
    let (server, generator) = s
        .split_once(',')
        .ok_or("expected SERVER,GENERATOR, e.g. 0,1")?;
    let cpu = |v: &str| v.trim().parse::<usize>().map_err(|e| format!("{v}: {e}"));
    Ok(scenarios::Pinning {
        server: cpu(server)?,
        generator: cpu(generator)?,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let targets = parse_targets(&cli.targets)?;
    let mut json_out = match &cli.json {
        Some(p) => Some(std::fs::File::create(p).with_context(|| format!("{}", p.display()))?),
        None => None,
    };
    let mut emit = |target: Target, scenario: &str, v: serde_json::Value| {
        if let Some(f) = &mut json_out {
            let mut v = v;
            v["scenario"] = scenario.into();
            v["target_kind"] = format!("{target:?}").into();
            let _ = writeln!(f, "{v}");
        }
    };
    let hub_set = &scenarios::HubOptions {
        settings: cli.hub_set.clone(),
        batch: !cli.no_batch,
        pin: cli.pin,
    };
    match cli.scenario {
        Scenario::Broadcast | Scenario::PerBill => {
            let (name, clients, topics, events, rate) = match cli.scenario {
                Scenario::Broadcast => ("broadcast", 1_000, 1, 2_000, 0.0),
                _ => ("per-bill", 5_000, 500, 20_000, 0.0),
            };
            let clients = cli.clients.unwrap_or(clients);
            let topics = cli.topics.unwrap_or(topics);
            let events = cli.events.unwrap_or(events);
            let rate = cli.rate.unwrap_or(rate);
            println!(
                "## {name}: {clients} clients over {topics} topic(s), {events} events offered at {} events/s\n",
                if rate > 0.0 { format!("{rate:.0}") } else { "max".into() }
            );
            let results = scenarios::compare(&targets, cli.runs, hub_set, |run| {
                bills_workload(clients, topics, events, rate, run)
            })
            .await?;
            for (t, r) in &results {
                emit(*t, name, r.to_json());
            }
            println!("{}", scenarios::table(&results));
        }
        Scenario::MaxRate => {
            let clients = cli.clients.unwrap_or(1_000);
            let topics = cli.topics.unwrap_or(1);
            println!(
                "## max-rate: {clients} clients over {topics} topic(s), p99 <= {} ms, no loss, {} s per step\n",
                cli.p99_limit_ms, cli.step_secs
            );
            let mut rows = String::from(
                "| run | target | best events/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | server CPU s | CPU µs/delivery |\n|---|---|---|---|---|---|---|---|---|\n",
            );
            let mut best_dps: Vec<(Target, f64)> = Vec::new();
            // Repetitions alternate between the targets, as the other scenarios do.
            for run in 1..=cli.runs {
                for &target in &targets {
                    let search = scenarios::StepSearch {
                        clients,
                        topics,
                        start_rate: cli.start_rate,
                        step: 1.5,
                        step_secs: cli.step_secs,
                        p99_limit_ms: cli.p99_limit_ms,
                        max_steps: 12,
                    };
                    let (best, tried) = scenarios::max_rate(target, hub_set, &search).await?;
                    for (rate, r) in &tried {
                        let mut v = r.to_json();
                        v["offered_rate"] = (*rate).into();
                        v["run"] = run.into();
                        emit(target, "max-rate", v);
                    }
                    let Some(r) = best else {
                        rows +=
                            &format!("| {run} | {} | none passed | | | | | | |\n", target.name());
                        best_dps.push((target, 0.0));
                        continue;
                    };
                    rows += &format!(
                        "| {run} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} |\n",
                        target.name(),
                        r.published as f64 / r.publish_secs.max(1e-9),
                        r.deliveries_per_sec,
                        r.latency.p50_ms,
                        r.latency.p99_ms,
                        r.latency.p999_ms,
                        r.server_cpu_secs,
                        r.cpu_us_per_delivery()
                    );
                    best_dps.push((target, r.deliveries_per_sec));
                }
            }
            println!("{rows}");
            let median_of = |t: Target| {
                let mut v: Vec<f64> = best_dps.iter().filter(|b| b.0 == t).map(|b| b.1).collect();
                (!v.is_empty()).then(|| sapha_benches::stats::median(&mut v))
            };
            if let Some(nats) = median_of(Target::Nats) {
                for &t in targets.iter().filter(|&&t| t != Target::Nats) {
                    if let Some(hub) = median_of(t) {
                        println!(
                            "{} / baseline: best deliveries/s, median over runs, × {:.2}\n",
                            t.name(),
                            hub / nats
                        );
                    }
                }
            }
        }
        Scenario::Idle if cli.hubs > 1 => {
            let n = cli.clients.unwrap_or(18_000);
            println!(
                "## idle, shared port: {n} idle connections to {} hub processes on one port (reuse_port)\n",
                cli.hubs
            );
            println!("| run | hub | connections | RSS before MiB | RSS after MiB | KiB per connection |\n|---|---|---|---|---|---|");
            let mut per = Vec::new();
            for run in 1..=cli.runs {
                let hubs = scenarios::idle_shared(hub_set, cli.hubs, n).await?;
                for (i, h) in hubs.iter().enumerate() {
                    println!(
                        "| {run} | {} | {} | {:.1} | {:.1} | {:.2} |",
                        i + 1,
                        h.connections,
                        h.before_kib as f64 / 1024.0,
                        h.after_kib as f64 / 1024.0,
                        h.kib_per_connection()
                    );
                    emit(
                        Target::Hub,
                        "idle-shared",
                        serde_json::json!({"run": run, "hub": i + 1, "connections": h.connections,
                            "opened_total": h.opened_total, "failed_total": h.failed_total,
                            "rss_before_kib": h.before_kib, "rss_after_kib": h.after_kib,
                            "kib_per_connection": h.kib_per_connection()}),
                    );
                    per.push(h.kib_per_connection());
                }
                let (opened, failed) = hubs
                    .first()
                    .map_or((0, 0), |h| (h.opened_total, h.failed_total));
                eprintln!("  run {run}: {opened} opened, {failed} failed");
            }
            println!(
                "\nKiB per connection, median over hubs and runs: {:.2}\n",
                sapha_benches::stats::median(&mut per)
            );
        }
        Scenario::Idle => {
            let n = cli.clients.unwrap_or(19_000);
            println!("## idle: {n} idle connections, one per-bill filter each\n");
            println!("| target | runs | connections | RSS before MiB | RSS after MiB | KiB per connection (median) |\n|---|---|---|---|---|---|");
            for &target in &targets {
                let mut per = Vec::new();
                let mut last = None;
                for _ in 0..cli.runs {
                    let r = scenarios::idle(target, hub_set, n).await?;
                    eprintln!(
                        "  {}: {} open ({} failed {:?}) in {:.1} s, RSS {} -> {} KiB, {:.2} KiB/conn",
                        target.name(),
                        r.opened,
                        r.failed,
                        r.failures,
                        r.connect_secs,
                        r.before_kib,
                        r.after_kib,
                        r.kib_per_connection()
                    );
                    emit(
                        target,
                        "idle",
                        serde_json::json!({"opened": r.opened, "failed": r.failed,
                            "rss_before_kib": r.before_kib, "rss_after_kib": r.after_kib,
                            "kib_per_connection": r.kib_per_connection()}),
                    );
                    per.push(r.kib_per_connection());
                    last = Some(r);
                }
                let r = last.expect("at least one run");
                println!(
                    "| {} | {} | {} | {:.1} | {:.1} | {:.2} |",
                    target.name(),
                    cli.runs,
                    r.opened,
                    r.before_kib as f64 / 1024.0,
                    r.after_kib as f64 / 1024.0,
                    sapha_benches::stats::median(&mut per)
                );
            }
            println!();
        }
        Scenario::Sitting => {
            let clients = cli.clients.unwrap_or(10_000);
            println!(
                "## sitting: {} to {clients} clients, time / {}, gaps capped at {} s\n",
                cli.file.display(),
                cli.speed,
                cli.max_gap_secs
            );
            let file = cli.file.clone();
            let (speed, gap) = (cli.speed, Duration::from_secs_f64(cli.max_gap_secs));
            scenarios::sitting_workload(&file, clients, speed, gap, "check")?;
            let results = scenarios::compare(&targets, cli.runs, hub_set, |run| {
                scenarios::sitting_workload(&file, clients, speed, gap, run).expect("checked above")
            })
            .await?;
            for (t, r) in &results {
                emit(*t, "sitting", r.to_json());
            }
            println!("{}", scenarios::table(&results));
        }
    }
    Ok(())
}
