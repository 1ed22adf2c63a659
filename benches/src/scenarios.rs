//! The five scenarios of issue 4, each against the hub and the baseline in the
//! same invocation, with fresh servers for every run, and their report tables.

use crate::load::{self, Clients, Endpoint, RunResult, Schedule, Target, Workload};
use crate::procfs;
use crate::servers::{Hub, Nats};
use crate::stats::median;
use crate::workload;
use sapha_proto::{Event, TopicFilter};
use std::path::Path;
use std::time::Duration;

/// The servers of one target, kept alive while a run uses them.
pub struct Servers {
    /// Dropped (killed) before nats-server, so the hub does not log a lost NATS.
    pub hub: Option<Hub>,
    pub nats: Nats,
    pub endpoint: Endpoint,
}

/// How the hub is run and spoken to.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// Hub settings, `key=value` (`sapha hub --set`).
    pub settings: Vec<String>,
    /// Clients ask for `batch` frames (`?batch=true`), as Sapha's own clients do.
    pub batch: bool,
    /// Pinned runs: the server under test (the hub, or the baseline
    /// nats-server) on CPU `server`, and this generator (and the hub's own
    /// JetStream server) on CPU `generator`, so that each is capped by its own core.
    pub pin: Option<Pinning>,
}

/// Which CPU each side of a pinned run uses.
#[derive(Debug, Clone, Copy)]
pub struct Pinning {
    pub server: usize,
    pub generator: usize,
}

/// Starts fresh servers for `target`.
pub async fn start(target: Target, hub: &HubOptions) -> anyhow::Result<Servers> {
    let pin = hub.pin;
    if let Some(pin) = pin {
        procfs::pin(std::process::id(), pin.generator)?;
    }
    let nats = Nats::start_with_websocket();
    load::ensure_stream(&nats.url()).await?;
    let (hub, endpoint) = match target {
        Target::Hub | Target::HubProto => {
            let endpoint_batch = hub.batch;
            let hub = Hub::start(&nats, &hub.settings).await?;
            let endpoint = Endpoint {
                target,
                batch: endpoint_batch,
                port: hub.port,
                server_pid: hub.pid(),
                nats_pid: Some(nats.pid()),
                nats_url: nats.url(),
            };
            (Some(hub), endpoint)
        }
        Target::Nats => {
            let endpoint = Endpoint {
                target,
                port: nats
                    .websocket_port()
                    .expect("started with a websocket listener"),
                server_pid: nats.pid(),
                batch: false,
                nats_pid: None,
                nats_url: nats.url(),
            };
            (None, endpoint)
        }
    };
    if let Some(pin) = pin {
        // The generator's threads and children (the hub's JetStream server)
        // keep the generator's CPU; only the server under test moves.
        procfs::pin(endpoint.server_pid, pin.server)?;
    }
    Ok(Servers {
        nats,
        hub,
        endpoint,
    })
}

/// C clients over T bill topics (client c follows bill c mod T), and M events
/// round-robin over the T bills.
pub fn bills_workload(
    clients: usize,
    topics: usize,
    events: u64,
    rate: f64,
    run: &str,
) -> Workload {
    let topics = topics.max(1);
    Workload {
        filters: (0..clients)
            .map(|c| workload::bill_filter(c % topics))
            .collect(),
        events: (0..events)
            .map(|i| workload::event("bench", i, i as usize % topics, 0))
            .collect(),
        schedule: Schedule::Rate(rate),
        drain: Duration::from_secs(15),
        run_id: run.to_owned(),
    }
}

/// Runs `make(run)` against each target `runs` times (alternating targets,
/// fresh servers each time) and returns every result.
pub async fn compare(
    targets: &[Target],
    runs: usize,
    hub: &HubOptions,
    make: impl Fn(&str) -> Workload,
) -> anyhow::Result<Vec<(Target, RunResult)>> {
    let mut out = Vec::new();
    for run in 0..runs {
        for &target in targets {
            let servers = start(target, hub).await?;
            let w = make(&format!("r{run}"));
            let r = load::run(&servers.endpoint, &w).await?;
            eprintln!("run {}: {}", run + 1, r.line());
            out.push((target, r));
        }
    }
    Ok(out)
}

/// Medians per target, side by side, with each hub target's ratios to the
/// baseline. CPU per delivery is the server's CPU time over the deliveries it
/// made; for the hub, also with its JetStream server's time added.
pub fn table(results: &[(Target, RunResult)]) -> String {
    let mut s = String::from(
        "| target | runs | clients | deliveries/s | p50 ms | p99 ms | p99.9 ms | lost | dup | server CPU s | CPU µs/delivery | server RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut medians = Vec::new();
    for target in [Target::Hub, Target::HubProto, Target::Nats] {
        let rs: Vec<&RunResult> = results
            .iter()
            .filter(|(t, _)| *t == target)
            .map(|(_, r)| r)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let m = |f: &dyn Fn(&RunResult) -> f64| {
            median(&mut rs.iter().map(|r| f(r)).collect::<Vec<_>>())
        };
        let dps = m(&|r| r.deliveries_per_sec);
        let p99 = m(&|r| r.latency.p99_ms);
        let lost: u64 = rs.iter().map(|r| r.lost).sum();
        let dup: u64 = rs.iter().map(|r| r.duplicates).sum();
        let cpu = m(&|r| r.server_cpu_secs);
        let per = m(&|r| r.cpu_us_per_delivery());
        let with_nats = rs[0].nats_cpu_secs.map(|_| {
            let nats = m(&|r| r.nats_cpu_secs.unwrap_or(0.0));
            let per_all = m(&|r| r.cpu_us_per_delivery_with_nats());
            (nats, per_all)
        });
        let (cpu_text, per_text) = match with_nats {
            Some((nats, per_all)) => (
                format!("{cpu:.2} (+ nats {nats:.2})"),
                format!("{per:.3} ({per_all:.3})"),
            ),
            None => (format!("{cpu:.2}"), format!("{per:.3}")),
        };
        s += &format!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {:.0} |\n",
            target.name(),
            rs.len(),
            rs[0].clients,
            dps,
            m(&|r| r.latency.p50_ms),
            p99,
            m(&|r| r.latency.p999_ms),
            lost,
            dup,
            cpu_text,
            per_text,
            m(&|r| r.server_rss_kib as f64) / 1024.0,
        );
        let per_all = with_nats.map_or(per, |(_, p)| p);
        medians.push((target, dps, p99, per, per_all));
    }
    if let Some(&(_, nd, np, nper, _)) = medians.iter().find(|m| m.0 == Target::Nats) {
        for &(t, hd, hp, hper, hper_all) in medians.iter().filter(|m| m.0 != Target::Nats) {
            s += &format!(
                "\n{} / baseline: deliveries/s × {:.2} (higher is better); p99 × {:.2}, \
                 CPU per delivery × {:.2}, × {:.2} with its nats-server (lower is better)\n",
                t.name(),
                hd / nd,
                hp / np,
                hper / nper,
                hper_all / nper
            );
        }
    }
    s
}

/// Scenario 3's step search: raise the rate by `step` until a run fails
/// (loss, a disconnect, or p99 above the limit), then bisect.
#[derive(Debug, Clone)]
pub struct StepSearch {
    pub clients: usize,
    pub topics: usize,
    /// The first rate tried, events/s.
    pub start_rate: f64,
    /// The factor between two rates before the first failure.
    pub step: f64,
    /// Seconds of publishing per step.
    pub step_secs: f64,
    pub p99_limit_ms: f64,
    /// Most steps, bisection included.
    pub max_steps: usize,
}

/// Scenario 3: the highest rate at which a target delivers everything with
/// p99 under the limit. Every step opens fresh clients on the same servers.
pub async fn max_rate(
    target: Target,
    hub: &HubOptions,
    search: &StepSearch,
) -> anyhow::Result<(Option<RunResult>, Vec<(f64, RunResult)>)> {
    let StepSearch {
        clients,
        topics,
        start_rate,
        step,
        step_secs,
        p99_limit_ms,
        max_steps,
    } = search.clone();
    let servers = start(target, hub).await?;
    let mut tried = Vec::new();
    let mut best: Option<(f64, RunResult)> = None;
    let mut fail_rate: Option<f64> = None;
    let mut rate = start_rate;
    for i in 0..max_steps {
        let events = (rate * step_secs).ceil() as u64;
        // A failing step is run once more: one short window can hold a pause
        // of this VM (seen on both targets). It fails only if it fails twice.
        let mut attempt = 0;
        let (r, pass) = loop {
            let w = bills_workload(clients, topics, events, rate, &format!("s{i}-{attempt}"));
            let r = load::run(&servers.endpoint, &w).await?;
            let pass = r.clean() && r.disconnects.is_empty() && r.latency.p99_ms <= p99_limit_ms;
            eprintln!(
                "  {} @ {rate:.0} events/s: {} {}",
                target.name(),
                if pass { "pass" } else { "FAIL" },
                r.line()
            );
            tried.push((rate, r.clone()));
            attempt += 1;
            if pass || attempt == 2 {
                break (r, pass);
            }
        };
        if pass {
            best = Some((rate, r));
        } else {
            fail_rate = Some(rate);
        }
        rate = match (best.as_ref().map(|b| b.0), fail_rate) {
            (Some(ok), Some(bad)) if bad / ok < 1.1 => break,
            (Some(ok), Some(bad)) => (ok + bad) / 2.0,
            (Some(ok), None) => ok * step,
            (None, Some(bad)) => bad / step,
            (None, None) => unreachable!(),
        };
        if rate < 1.0 {
            break;
        }
    }
    Ok((best.map(|b| b.1), tried))
}

/// Scenario 4: opens `n` idle connections (each on its own bill) after 10
/// warm-up ones, and measures the server's RSS per connection.
pub async fn idle(target: Target, hub: &HubOptions, n: usize) -> anyhow::Result<IdleResult> {
    let servers = start(target, hub).await?;
    let pid = servers.endpoint.server_pid;
    let warm: Vec<TopicFilter> = (0..10).map(workload::bill_filter).collect();
    let warm = Clients::open(&servers.endpoint, &warm, 0, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = procfs::rss_kib(pid);
    let filters: Vec<TopicFilter> = (10..n + 10).map(workload::bill_filter).collect();
    let started = std::time::Instant::now();
    let clients = Clients::open(
        &servers.endpoint,
        &filters,
        0,
        Duration::from_secs(120 + n as u64 / 50),
    )
    .await;
    let connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = procfs::rss_kib(pid);
    let opened = clients.opened;
    let failed = clients.failed;
    let failures: Vec<String> = clients
        .close()
        .await
        .into_iter()
        .filter_map(|t| t.closed)
        .take(3)
        .collect();
    warm.close().await;
    Ok(IdleResult {
        target,
        opened,
        failed,
        failures,
        before_kib: before,
        after_kib: after,
        connect_secs,
    })
}

/// Scenario 4 across `hubs` hub processes sharing one port (`reuse_port`):
/// `n` idle connections to that port, which the kernel spreads over the
/// hubs. Gives each hub's accepted connections (its socket count) and RSS.
pub async fn idle_shared(
    hub: &HubOptions,
    hubs: usize,
    n: usize,
) -> anyhow::Result<Vec<SharedIdle>> {
    let nats = Nats::start_with_websocket();
    load::ensure_stream(&nats.url()).await?;
    let port = crate::servers::free_port()?;
    let mut settings = hub.settings.clone();
    settings.push("reuse_port=true".into());
    let mut running = Vec::new();
    for _ in 0..hubs {
        running.push(Hub::start_on(&nats, &settings, port).await?);
    }
    let endpoint = Endpoint {
        target: Target::Hub,
        batch: hub.batch,
        port,
        server_pid: running[0].pid(),
        nats_pid: Some(nats.pid()),
        nats_url: nats.url(),
    };
    let warm: Vec<TopicFilter> = (0..10 * hubs).map(workload::bill_filter).collect();
    let warm = Clients::open(&endpoint, &warm, 0, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: Vec<(u64, usize)> = running
        .iter()
        .map(|h| (procfs::rss_kib(h.pid()), procfs::sockets(h.pid())))
        .collect();
    let filters: Vec<TopicFilter> = (10 * hubs..n + 10 * hubs)
        .map(workload::bill_filter)
        .collect();
    let clients = Clients::open(
        &endpoint,
        &filters,
        0,
        Duration::from_secs(120 + n as u64 / 50),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let out = running
        .iter()
        .zip(before)
        .map(|(h, (rss0, sockets0))| SharedIdle {
            connections: procfs::sockets(h.pid()).saturating_sub(sockets0),
            before_kib: rss0,
            after_kib: procfs::rss_kib(h.pid()),
            opened_total: clients.opened,
            failed_total: clients.failed,
        })
        .collect();
    clients.close().await;
    warm.close().await;
    drop(running);
    Ok(out)
}

/// One hub of [`idle_shared`].
#[derive(Debug)]
pub struct SharedIdle {
    /// Idle connections this hub accepted (its new sockets).
    pub connections: usize,
    pub before_kib: u64,
    pub after_kib: u64,
    /// Connections opened (and failed) across all hubs.
    pub opened_total: usize,
    pub failed_total: usize,
}

impl SharedIdle {
    pub fn kib_per_connection(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 / self.connections.max(1) as f64
    }
}

#[derive(Debug)]
pub struct IdleResult {
    pub target: Target,
    pub opened: usize,
    pub failed: usize,
    pub failures: Vec<String>,
    pub before_kib: u64,
    pub after_kib: u64,
    pub connect_secs: f64,
}

impl IdleResult {
    pub fn kib_per_connection(&self) -> f64 {
        self.after_kib.saturating_sub(self.before_kib) as f64 / self.opened.max(1) as f64
    }
}

/// Scenario 5: the events of a scenario file, spaced as their `occurred_at`
/// says divided by `speed`, each gap capped at `max_gap`, to `clients` clients
/// with a realistic mix of filters.
pub fn sitting_workload(
    file: &Path,
    clients: usize,
    speed: f64,
    max_gap: Duration,
    run: &str,
) -> anyhow::Result<Workload> {
    let text = std::fs::read_to_string(file)?;
    let events: Vec<Event> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Event::from_json(l).map_err(|e| anyhow::anyhow!("{}: {e}", file.display())))
        .collect::<Result<_, _>>()?;
    let mut offsets = Vec::with_capacity(events.len());
    let mut at = Duration::ZERO;
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            let gap = (e.occurred_at - events[i - 1].occurred_at)
                .to_std()
                .unwrap_or_default()
                .div_f64(speed.max(1e-9))
                .min(max_gap);
            at += gap;
        }
        offsets.push(at);
    }
    // The first sitting's and the first bill's topic without its last token.
    let aggregate = |prefix: &str, fallback: &str| {
        events
            .iter()
            .map(|e| e.topic())
            .find(|t| t.starts_with(prefix))
            .and_then(|t| t.rsplit_once('.').map(|(a, _)| a.to_owned()))
            .unwrap_or_else(|| fallback.into())
    };
    let sitting = aggregate("sitting.", "sitting.joint");
    let bill = aggregate("bill.", "bill.*.stage");
    // 60 % the sitting, 20 % the bill, 10 % every vote, 5 % every stage change, 5 % everything.
    let mix: [(&str, usize); 5] = [
        (&sitting, 60),
        (&bill, 20),
        ("sitting.*.*.vote", 10),
        ("bill.*.stage", 5),
        (">", 5),
    ];
    let parsed: Vec<(TopicFilter, usize)> = mix
        .iter()
        .map(|(t, w)| Ok((TopicFilter::parse(t)?, *w)))
        .collect::<Result<_, sapha_proto::topic::TopicError>>()?;
    let filters = (0..clients)
        .map(|c| {
            let mut k = c % 100;
            for (f, w) in &parsed {
                if k < *w {
                    return f.clone();
                }
                k -= w;
            }
            parsed[0].0.clone()
        })
        .collect();
    Ok(Workload {
        filters,
        events,
        schedule: Schedule::Offsets(offsets),
        drain: Duration::from_secs(15),
        run_id: run.to_owned(),
    })
}
