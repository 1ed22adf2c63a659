//! One stage change of a popular bill with many followers, through `sapha
//! notify` replicas, to a local RFC 8030 push service (BENCHMARKS.md,
//! "Notifications at scale"; issue 14's scale section).
//!
//!   cargo build --release -p sapha
//!   cargo run --release -p sapha-benches --bin notify -- --followers 100000 --replicas 1,2,3 --runs 3
//!
//! It starts nats-server (JetStream, temp dir) and a push service in this
//! process (by default it counts messages and verifies each distinct VAPID
//! JWT once, without decrypting), writes N Web Push followers of one bill
//! straight into the follow store, then for each replica count starts that
//! many release `sapha notify` processes on a fresh event stream, work queue
//! and sent-marker bucket, publishes ONE stage change of the bill and times
//! it until the push service has accepted N messages. It also runs a smaller
//! count once with the push service decrypting every message, against the
//! same count without, to show what the receiver itself costs.

use anyhow::{bail, Context};
use async_nats::jetstream::{self, stream};
use clap::Parser;
use futures::StreamExt;
use sapha_benches::{procfs, servers};
use sapha_follows::{Channel, FollowStore, Lang, Limits, PushKeys, PushSubscription};
use sapha_proto::stage::Stage;
use sapha_tests::fixtures::bill_event;
use sapha_tests::push_service::{PushOptions, PushService};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// Followers of the one bill.
    #[arg(long, default_value_t = 100_000)]
    followers: usize,
    /// Replica counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    replicas: Vec<usize>,
    /// Runs of every replica count (the table shows medians).
    #[arg(long, default_value_t = 1)]
    runs: usize,
    /// Follower writes in flight while filling the follow store.
    #[arg(long, default_value_t = 64)]
    create_in_flight: usize,
    /// Followers of the decrypting push service's check (0: skip it).
    #[arg(long, default_value_t = 5_000)]
    decrypt_check: usize,
    /// Longest wait for one run's last push, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Extra arguments for every `sapha notify` (e.g. `--push-per-host=128`),
    /// whitespace-separated.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    notify_args: String,
}

const BILL: &str = "b-2567-0001";
const SMALL_BILL_ON: &str = "b-2567-0002";
const SMALL_BILL_OFF: &str = "b-2567-0003";
const SMALL_BUCKET: &str = "SAPHA_FOLLOWS_SMALL";
const PLAN_CONSUMER: &str = "sapha-notify-plan";
const SEND_CONSUMER: &str = "sapha-notify-send";
const JOBS_STREAM: &str = "SAPHA_NOTIFY_JOBS";
const SENT_STREAM: &str = "KV_SAPHA_NOTIFY_SENT";

/// One measured run.
#[derive(Clone, Debug)]
struct Run {
    replicas: usize,
    /// Publish to the first accepted push.
    first: Duration,
    /// Publish to the N-th accepted push.
    last: Duration,
    /// Accepted pushes in this run (N, unless some were lost or repeated).
    accepted: usize,
    /// CPU seconds of every replica from the publish to the last push.
    notifier_cpu: f64,
    /// Peak RSS of each replica, KiB.
    rss_kib: Vec<u64>,
    nats_cpu: f64,
    /// This process (the push service; the bench's own polling is tiny).
    receiver_cpu: f64,
    /// Lines the replicas logged (warnings and errors).
    log_lines: usize,
}

/// The notifier processes of one run; SIGTERM, then SIGKILL, on drop.
struct Replicas(Vec<Child>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for c in &self.0 {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for c in &mut self.0 {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes `n` Web Push followers of `bill` to `store`, `in_flight` at once.
async fn fill(
    store: &FollowStore,
    push: &PushService,
    bill: &str,
    n: usize,
    in_flight: usize,
) -> anyhow::Result<Duration> {
    let limits = &Limits {
        max_bills: 50,
        allow_http_endpoints: true,
        ..Limits::default()
    };
    let bills = [bill.to_owned()];
    let t0 = Instant::now();
    let mut done = 0usize;
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let sub = push.subscribe();
            let channel = Channel::Webpush {
                subscription: PushSubscription {
                    endpoint: sub.endpoint,
                    keys: PushKeys {
                        p256dh: sub.p256dh,
                        auth: sub.auth,
                    },
                    expiration_time: (),
                },
            };
            let lang = if i % 2 == 0 { Lang::Th } else { Lang::En };
            let bills = &bills;
            async move { store.create(lang, channel, bills, limits).await }
        })
        .buffer_unordered(in_flight.max(1));
    while let Some(r) = results.next().await {
        r.context("writing a follower")?;
        done += 1;
        if done.is_multiple_of(20_000) {
            eprintln!("  {done} followers written ({:.1?})", t0.elapsed());
        }
    }
    Ok(t0.elapsed())
}

async fn stream_bytes(js: &jetstream::Context, name: &str) -> anyhow::Result<(u64, u64)> {
    let mut s = js.get_stream(name).await?;
    let info = s.info().await?;
    Ok((info.state.bytes, info.state.messages))
}

/// A fresh event stream, work queue and sent-marker bucket: no consumer, no
/// job and no marker of an earlier run is left.
async fn reset(js: &jetstream::Context) -> anyhow::Result<()> {
    for name in ["PARL", JOBS_STREAM, SENT_STREAM] {
        let _ = js.delete_stream(name).await;
    }
    js.create_stream(stream::Config {
        name: "PARL".into(),
        subjects: vec!["parl.v1.>".into()],
        ..Default::default()
    })
    .await
    .context("creating PARL")?;
    Ok(())
}

/// Waits until `replicas` notifiers each pull from both consumers (bounded).
async fn wait_ready(
    js: &jetstream::Context,
    replicas: usize,
    children: &mut Replicas,
) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(60);
    loop {
        let waiting = |stream: &'static str, consumer: &'static str| async move {
            let s = js.get_stream(stream).await.ok()?;
            let mut c: jetstream::consumer::PullConsumer = s.get_consumer(consumer).await.ok()?;
            Some(c.info().await.ok()?.num_waiting as usize)
        };
        let plan = waiting("PARL", PLAN_CONSUMER).await.unwrap_or(0);
        let send = waiting(JOBS_STREAM, SEND_CONSUMER).await.unwrap_or(0);
        if plan >= replicas && send >= replicas {
            return Ok(t0.elapsed());
        }
        for c in &mut children.0 {
            if let Some(status) = c.try_wait()? {
                bail!("a notifier exited at start with {status}");
            }
        }
        if Instant::now() > deadline {
            bail!("the notifiers were not all pulling after 60 s (plan {plan}, send {send} of {replicas})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn one_run(
    js: &jetstream::Context,
    nats: &servers::Nats,
    push: &PushService,
    args: &Args,
    vapid: &str,
    bucket: &str,
    bill: &str,
    n: usize,
    replicas: usize,
    seq: u64,
    logs: &Path,
) -> anyhow::Result<Run> {
    reset(js).await?;
    let mut children = Replicas(Vec::new());
    let mut log_files = Vec::new();
    for r in 0..replicas {
        let log = logs.join(format!("notify-{seq}-{r}.log"));
        let file = std::fs::File::create(&log)?;
        log_files.push(log);
        let child = Command::new(servers::sapha_binary())
            .args(["notify", "--nats-url", &nats.url()])
            .args(["--vapid-private-key", vapid])
            .args(["--follows-bucket", bucket])
            .arg("--from-start")
            .arg("--allow-loopback-targets")
            .args(args.notify_args.split_whitespace())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it: cargo build --release -p sapha)",
                    servers::sapha_binary().display()
                )
            })?;
        children.0.push(child);
    }
    let ready = wait_ready(js, replicas, &mut children).await?;
    let pids: Vec<u32> = children.0.iter().map(|c| c.id()).collect();
    let cpu0: Vec<f64> = pids.iter().map(|&p| procfs::cpu_seconds(p)).collect();
    let nats0 = procfs::cpu_seconds(nats.pid());
    let me0 = procfs::cpu_seconds(std::process::id());
    let base = push.count();

    let event = bill_event(bill, seq, Some(Stage::HouseR1), Stage::HouseCommittee);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", event.event_id.as_str());
    let t0 = Instant::now();
    js.publish_with_headers(event.subject(), headers, event.encode_proto().into())
        .await?
        .await?;
    let deadline = t0 + Duration::from_secs(args.timeout_secs);
    let mut first = None;
    let mut last_progress = (base, Instant::now());
    let last = loop {
        let c = push.count();
        if first.is_none() && c > base {
            first = Some(t0.elapsed());
        }
        if c >= base + n {
            break t0.elapsed();
        }
        if c != last_progress.0 {
            last_progress = (c, Instant::now());
        }
        if Instant::now() > deadline {
            bail!(
                "{replicas} replica(s): only {} of {n} pushes after {} s",
                c - base,
                args.timeout_secs
            );
        }
        if last_progress.1.elapsed() > Duration::from_secs(5) {
            // Still bounded by the deadline; just say it is stuck.
            eprintln!(
                "  no push for 5 s ({} of {n} so far, {:.0?})",
                c - base,
                t0.elapsed()
            );
            last_progress.1 = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let notifier_cpu: f64 = pids
        .iter()
        .zip(&cpu0)
        .map(|(&p, c0)| procfs::cpu_seconds(p) - c0)
        .sum();
    let rss_kib = pids.iter().map(|&p| procfs::peak_rss_kib(p)).collect();
    let nats_cpu = procfs::cpu_seconds(nats.pid()) - nats0;
    let receiver_cpu = procfs::cpu_seconds(std::process::id()) - me0;
    // A short look for repeats after the N-th.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let accepted = push.count() - base;
    drop(children);
    let log_lines = log_files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .map(|s| s.lines().count())
                .unwrap_or(0)
        })
        .sum();
    Ok(Run {
        replicas,
        first: first.unwrap_or(last),
        last,
        accepted,
        notifier_cpu,
        rss_kib,
        nats_cpu,
        receiver_cpu,
        log_lines,
    })
    .inspect(|run: &Run| {
        eprintln!(
            "  {} replica(s): ready in {:.1?}, first push {:.2?}, last {:.2?}, {} accepted, notifier CPU {:.1} s, nats CPU {:.1} s, receiver CPU {:.1} s, RSS {:?} MiB, {} log lines",
            run.replicas,
            ready,
            run.first,
            run.last,
            run.accepted,
            run.notifier_cpu,
            run.nats_cpu,
            run.receiver_cpu,
            run.rss_kib.iter().map(|k| k / 1024).collect::<Vec<_>>(),
            run.log_lines
        )
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    sapha_edge::raise_nofile_limit();
    if !servers::sapha_binary().exists() {
        bail!(
            "{} is missing: cargo build --release -p sapha (or set SAPHA_BIN)",
            servers::sapha_binary().display()
        );
    }
    let logs = tempfile::tempdir()?;
    let nats = servers::Nats::start();
    let client = async_nats::connect(nats.url()).await?;
    let js = jetstream::new(client);
    reset(&js).await?;
    let push = PushService::start_with(PushOptions {
        decrypt: false,
        allow_aud_without_port: false,
    })
    .await;
    let (vapid, _public) = sapha_subscribers::notify::generate_vapid_key();

    eprintln!("writing {} followers of {BILL}", args.followers);
    let store = FollowStore::open(&js, sapha_follows::DEFAULT_BUCKET, 1).await?;
    let fill_time = fill(&store, &push, BILL, args.followers, args.create_in_flight).await?;
    let (bytes, messages) =
        stream_bytes(&js, &format!("KV_{}", sapha_follows::DEFAULT_BUCKET)).await?;
    eprintln!("  done in {fill_time:.1?}");

    let mut seq = 0u64;
    let mut runs: Vec<Run> = Vec::new();
    for run in 0..args.runs {
        for &r in &args.replicas {
            seq += 1;
            eprintln!("run {} of {}, {r} replica(s)", run + 1, args.runs);
            let result = one_run(
                &js,
                &nats,
                &push,
                &args,
                &vapid,
                sapha_follows::DEFAULT_BUCKET,
                BILL,
                args.followers,
                r,
                seq,
                logs.path(),
            )
            .await;
            match result {
                Ok(x) => runs.push(x),
                Err(e) => eprintln!("  FAILED: {e:#}"),
            }
        }
    }

    // The receiver's own cost: the same small count to a decrypting push
    // service and to a counting one, one replica each.
    let mut small = Vec::new();
    if args.decrypt_check > 0 {
        let decrypting = PushService::start().await;
        let small_store = FollowStore::open(&js, SMALL_BUCKET, 1).await?;
        fill(
            &small_store,
            &decrypting,
            SMALL_BILL_ON,
            args.decrypt_check,
            args.create_in_flight,
        )
        .await?;
        fill(
            &small_store,
            &push,
            SMALL_BILL_OFF,
            args.decrypt_check,
            args.create_in_flight,
        )
        .await?;
        for (label, service, bill) in [
            ("decrypt on", &decrypting, SMALL_BILL_ON),
            ("decrypt off", &push, SMALL_BILL_OFF),
        ] {
            seq += 1;
            eprintln!("receiver check, {label}, {} followers", args.decrypt_check);
            match one_run(
                &js,
                &nats,
                service,
                &args,
                &vapid,
                SMALL_BUCKET,
                bill,
                args.decrypt_check,
                1,
                seq,
                logs.path(),
            )
            .await
            {
                Ok(x) => small.push((label, x)),
                Err(e) => eprintln!("  FAILED: {e:#}"),
            }
        }
        let rejected = decrypting.rejected().len();
        if rejected > 0 {
            eprintln!("  the decrypting push service rejected {rejected} messages");
        }
    }

    report(&args, fill_time, bytes, messages, &runs, &small);
    Ok(())
}

fn report(
    args: &Args,
    fill_time: Duration,
    bytes: u64,
    messages: u64,
    runs: &[Run],
    small: &[(&str, Run)],
) {
    let n = args.followers;
    println!("\n## {n} followers of one bill, one stage change\n");
    println!(
        "Follow store: {n} followers written in {:.1} s ({:.0}/s, {} in flight); KV_{} holds {} messages, {:.1} MiB, {:.0} bytes per follower.\n",
        fill_time.as_secs_f64(),
        n as f64 / fill_time.as_secs_f64(),
        args.create_in_flight,
        sapha_follows::DEFAULT_BUCKET,
        messages,
        bytes as f64 / (1024.0 * 1024.0),
        bytes as f64 / n as f64
    );
    println!("| replicas | runs | time to last push accepted (median) | first push | pushes/s | notifier CPU s (sum) | pushes per CPU-second | max RSS per replica | nats-server CPU s | receiver CPU s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &r in &args.replicas {
        let of: Vec<&Run> = runs.iter().filter(|x| x.replicas == r).collect();
        if of.is_empty() {
            println!("| {r} | 0 | failed | | | | | | | |");
            continue;
        }
        let last = median(of.iter().map(|x| x.last.as_secs_f64()).collect());
        let first = median(of.iter().map(|x| x.first.as_secs_f64()).collect());
        let cpu = median(of.iter().map(|x| x.notifier_cpu).collect());
        let nats = median(of.iter().map(|x| x.nats_cpu).collect());
        let recv = median(of.iter().map(|x| x.receiver_cpu).collect());
        let rss = of
            .iter()
            .flat_map(|x| x.rss_kib.iter().copied())
            .max()
            .unwrap_or(0);
        println!(
            "| {r} | {} | {last:.1} s | {first:.2} s | {:.0} | {cpu:.1} | {:.0} | {} MiB | {nats:.1} | {recv:.1} |",
            of.len(),
            n as f64 / last,
            n as f64 / cpu,
            rss / 1024
        );
    }
    println!("\nRatios of time to last push against 1 replica, per run (same run):\n");
    for run in 0..args.runs {
        let per = args.replicas.len();
        let mine: Vec<&Run> = runs
            .iter()
            .skip(run * per)
            .take(per)
            .filter(|_| runs.len() == args.runs * per)
            .collect();
        let one = mine.iter().find(|x| x.replicas == 1);
        if let Some(one) = one {
            let ratios: Vec<String> = mine
                .iter()
                .filter(|x| x.replicas != 1)
                .map(|x| {
                    format!(
                        "{} replicas {:.2}",
                        x.replicas,
                        x.last.as_secs_f64() / one.last.as_secs_f64()
                    )
                })
                .collect();
            println!("- run {}: {}", run + 1, ratios.join(", "));
        }
    }
    println!("\nEvery run:\n");
    for x in runs {
        println!(
            "- {} replica(s): last {:.2} s, first {:.2} s, accepted {}, notifier CPU {:.1} s, nats CPU {:.1} s, receiver CPU {:.1} s, RSS {:?} MiB, {} log lines",
            x.replicas,
            x.last.as_secs_f64(),
            x.first.as_secs_f64(),
            x.accepted,
            x.notifier_cpu,
            x.nats_cpu,
            x.receiver_cpu,
            x.rss_kib.iter().map(|k| k / 1024).collect::<Vec<_>>(),
            x.log_lines
        );
    }
    if !small.is_empty() {
        println!(
            "\nThe receiver's cost, {} followers, 1 replica:\n",
            args.decrypt_check
        );
        println!("| push service | time to last push | pushes/s | notifier CPU s | receiver CPU s | receiver CPU µs per push |");
        println!("|---|---:|---:|---:|---:|---:|");
        for (label, x) in small {
            println!(
                "| {label} | {:.2} s | {:.0} | {:.1} | {:.1} | {:.0} |",
                x.last.as_secs_f64(),
                x.accepted as f64 / x.last.as_secs_f64(),
                x.notifier_cpu,
                x.receiver_cpu,
                x.receiver_cpu * 1e6 / x.accepted.max(1) as f64
            );
        }
    }
}
