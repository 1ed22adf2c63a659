//! The state side at the scale of a parliament's decades (BENCHMARKS.md, "The
//! state API at scale"): about ten years of history, 20,000 bills and 3,000
//! sittings, about 2 million events, through the hub's own state store.
//!
//!   cargo run --release -p sapha-benches --bin state [-- --bills 20000 --sittings 3000]
//!
//! It measures, in one run: the projection's build rate from stored protobuf
//! bytes (what a full replay does) against the fan-out's own per-event decode;
//! the memory the projection holds; a start from a snapshot against a full
//! replay; and the latency of `GET /v1/bills?q=...` and `/v1/bills/{id}` answers
//! under concurrent readers while events keep being applied.

use bytes::Bytes;
use chrono::{Duration, NaiveDate};
use clap::Parser;
use sapha_benches::procfs;
use sapha_hub::bench_api::{Prepared, State};
use sapha_proto::event::*;
use sapha_proto::projection::Projection;
use sapha_proto::Event;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Counts the bytes allocated now, so the projection's heap is measured exactly
/// (RSS would not show it: the freed history's pages are reused).
struct Counting;

static ALLOCATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new, Ordering::Relaxed);
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Parser)]
struct Args {
    /// Bills, introduced over ten years.
    #[arg(long, default_value_t = 20_000)]
    bills: usize,
    /// Sittings, with agendas, floor changes and votes.
    #[arg(long, default_value_t = 3_000)]
    sittings: usize,
    /// Reader threads for the latency run.
    #[arg(long, default_value_t = 4)]
    readers: usize,
    /// Requests per reader and per kind.
    #[arg(long, default_value_t = 500)]
    requests: usize,
    /// Also measure a real hub over HTTP: publish the history into a
    /// nats-server, time the hub's start (full replay, then from its snapshot),
    /// and the latency of the state API under concurrent HTTP clients.
    #[arg(long)]
    http: bool,
}

fn event(
    id: String,
    aggregate: &str,
    seq: u64,
    at: chrono::DateTime<chrono::Utc>,
    body: Body,
) -> Event {
    Event {
        schema_version: SCHEMA_VERSION,
        event_id: id,
        aggregate_id: aggregate.to_owned(),
        seq,
        occurred_at: at,
        precision: DatePrecision::Instant,
        recorded_at: None,
        source: "bench".into(),
        source_ref: None,
        supersedes: None,
        body,
    }
}

/// One sitting of about 600 events: lifecycle, quorum, chair, ten agenda
/// items with 25 speeches each and two votes, sections, motions.
fn sitting(n: usize, day: NaiveDate) -> Vec<Event> {
    let chamber = [Chamber::House, Chamber::Senate, Chamber::Joint][n % 3];
    let id = format!("{chamber}-{}-{n}", day.format("%Y%m%d"));
    let s = SittingRef {
        chamber,
        sitting_id: id.clone(),
    };
    let mut t = day.and_hms_opt(2, 30, 0).unwrap().and_utc();
    let mut out = Vec::with_capacity(620);
    let mut push = |body: Body, out: &mut Vec<Event>| {
        t += Duration::seconds(20);
        let seq = out.len() as u64 + 1;
        out.push(event(format!("e-{id}-{seq}"), &id, seq, t, body));
    };
    let person = |k: usize| Person {
        person_id: format!("p-{k}"),
        name: Text::new(format!("สมาชิก {k}"), format!("Member {k}")),
    };
    let lifecycle = |phase| {
        Body::SittingLifecycle(SittingLifecycle {
            sitting: s.clone(),
            phase,
            outcome: (phase == Phase::Closed).then_some(Outcome::Completed),
            title: (phase == Phase::Scheduled)
                .then(|| Text::new(format!("การประชุม ครั้งที่ {n}"), format!("Sitting no. {n}"))),
            number: (phase == Phase::Scheduled).then_some(n as u32 % 40 + 1),
            session: None,
        })
    };
    push(lifecycle(Phase::Scheduled), &mut out);
    push(lifecycle(Phase::Opened), &mut out);
    push(
        Body::QuorumChecked(QuorumChecked {
            sitting: s.clone(),
            present: 300,
            required: 240,
            met: true,
            in_office: Some(480),
        }),
        &mut out,
    );
    push(
        Body::ChairChanged(ChairChanged {
            sitting: s.clone(),
            person: person(0),
            office: Text::new("ประธาน", "President"),
        }),
        &mut out,
    );
    for item in 0..10 {
        let item_id = format!("item-{item}");
        push(
            Body::AgendaItemStarted(AgendaItemStarted {
                sitting: s.clone(),
                item_id: item_id.clone(),
                category: AgendaCategory::Urgent,
                title: Text::new(format!("ระเบียบวาระที่ {item}"), format!("Item {item}")),
                bill_id: None,
            }),
            &mut out,
        );
        for k in 0..25 {
            push(
                Body::SpeechStarted(SpeechStarted {
                    sitting: s.clone(),
                    person: person(k),
                    role: Role::Member,
                }),
                &mut out,
            );
            push(
                Body::SpeechEnded(SpeechEnded {
                    sitting: s.clone(),
                    person: person(k),
                }),
                &mut out,
            );
        }
        for v in 0..2 {
            let vote_id = format!("vote-{item}-{v}");
            push(
                Body::VoteOpened(VoteOpened {
                    sitting: s.clone(),
                    vote_id: vote_id.clone(),
                    method: VoteMethod::Electronic,
                    requirement: Text::new("เสียงข้างมาก", "a majority"),
                    question: Text::new("เห็นชอบหรือไม่", "Agreed?"),
                    bill_id: None,
                    threshold: None,
                }),
                &mut out,
            );
            let c = |option, value| VoteCount {
                option,
                group: (chamber == Chamber::Joint).then_some(Group::House),
                value,
            };
            push(
                Body::VoteClosed(VoteClosed {
                    sitting: s.clone(),
                    vote_id: vote_id.clone(),
                    counts: vec![
                        c(VoteOption::Aye, 200),
                        c(VoteOption::No, 50),
                        c(VoteOption::Abstain, 10),
                    ],
                    bill_id: None,
                    casting_vote: None,
                }),
                &mut out,
            );
            push(
                Body::VoteResult(VoteResult {
                    sitting: s.clone(),
                    vote_id,
                    result: VoteOutcome::Passed,
                    bill_id: None,
                }),
                &mut out,
            );
        }
        push(
            Body::AgendaItemEnded(AgendaItemEnded {
                sitting: s.clone(),
                item_id,
                disposition: Disposition::Completed,
            }),
            &mut out,
        );
    }
    push(lifecycle(Phase::Closed), &mut out);
    out
}

/// Ten years: the bills of the scenario generator, and the sittings, merged by time.
fn history(args: &Args) -> Vec<Event> {
    let start = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap();
    let mut events =
        sapha_publisher::scenario::generate::generate_bills_over(args.bills, 2566, start, 3650);
    for n in 0..args.sittings {
        let day = start + Duration::days((n as i64 * 3650) / args.sittings as i64);
        events.extend(sitting(n, day));
    }
    events.sort_by_key(|e| e.occurred_at);
    events
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let args = Args::parse();
    let events = history(&args);
    let stored: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(e.encode_proto()))
        .collect();
    if args.http {
        let subjects: Vec<String> = events.iter().map(Event::subject).collect();
        drop(events);
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        if let Err(e) = runtime.block_on(over_http(&args, &subjects, &stored)) {
            eprintln!("the HTTP run failed: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let bill_ids: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.body {
            Body::BillStageChanged(b) => Some(b.bill_id.clone()),
            _ => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    println!(
        "history: {} events ({} bills, {} sittings), {:.1} MB of protobuf",
        events.len(),
        bill_ids.len(),
        args.sittings,
        stored.iter().map(|b| b.len()).sum::<usize>() as f64 / 1e6
    );
    drop(events);

    // 1. Build rate: decode + apply (a full replay); the apply alone (what the
    // fan-out path adds per event) against the fan-out's own per-event work
    // (Prepared::decode: decode, topic, JSON frame), all in the same run.
    let pid = std::process::id();
    let mut replay_rates = Vec::new();
    let mut decode_only = Vec::new();
    let mut fanout_decode = Vec::new();
    let mut heap = None;
    let mut built = None;
    for _ in 0..3 {
        let t = Instant::now();
        for b in &stored {
            std::hint::black_box(Event::decode_proto(b).unwrap());
        }
        decode_only.push(t.elapsed().as_secs_f64() / stored.len() as f64);
        drop(built.take());
        let before = ALLOCATED.load(Ordering::Relaxed);
        let t = Instant::now();
        let mut p = Projection::default();
        for (i, b) in stored.iter().enumerate() {
            let e = Event::decode_proto(b).unwrap();
            p.apply(i as u64 + 1, &e);
        }
        replay_rates.push(stored.len() as f64 / t.elapsed().as_secs_f64());
        heap = Some(
            ALLOCATED.load(Ordering::Relaxed).saturating_sub(before) as f64 / (1024.0 * 1024.0),
        );
        built = Some(p);
        let t = Instant::now();
        for (i, b) in stored.iter().enumerate() {
            std::hint::black_box(Prepared::decode(i as u64 + 1, b.clone()).unwrap());
        }
        fanout_decode.push(t.elapsed().as_secs_f64() / stored.len() as f64);
    }
    let projection = built.unwrap();
    let replay = median(replay_rates);
    let decode_us = median(decode_only) * 1e6;
    let fanout_us = median(fanout_decode) * 1e6;
    let apply_us = 1e6 / replay - decode_us;
    println!("full replay (decode + apply): median {replay:.0} events/s over 3 runs");
    println!(
        "per event: apply {apply_us:.3} µs (decode + apply {:.3} µs minus decode {decode_us:.3} µs); the fan-out's Prepared::decode {fanout_us:.3} µs; apply / fan-out decode = {:.2}",
        1e6 / replay,
        apply_us / fanout_us
    );
    println!(
        "projection memory (heap bytes it holds, counted by the allocator): {:.0} MiB for {} bills and {} sittings; process RSS now {:.0} MiB",
        heap.unwrap(),
        projection.bills.len(),
        projection.sittings.len(),
        procfs::rss_kib(pid) as f64 / 1024.0
    );

    // 2. Start from a snapshot against a full replay.
    let json = serde_json::to_vec(&projection).unwrap();
    let mut loads = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let mut p: Projection = serde_json::from_slice(&json).unwrap();
        p.restore();
        loads.push(t.elapsed().as_secs_f64());
        assert_eq!(p.seq, projection.seq);
    }
    let load = median(loads);
    let full = stored.len() as f64 / replay;
    println!(
        "snapshot: {:.1} MB of JSON; load + restore median {:.2} s; full replay {:.2} s; ratio {:.1}x faster",
        json.len() as f64 / 1e6,
        load,
        full,
        full / load
    );

    // 3. Latency under concurrent readers, while a writer keeps applying events.
    let state = Arc::new(State::default());
    for (i, b) in stored.iter().enumerate() {
        state.apply(i as u64 + 1, &Event::decode_proto(b).unwrap());
    }
    state.set_ready();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (state, stop) = (state.clone(), stop.clone());
        let tail: Vec<Event> = stored[stored.len() - 20_000..]
            .iter()
            .map(|b| Event::decode_proto(b).unwrap())
            .collect();
        let base = stored.len() as u64;
        // 1,000 events/s, far above a parliament's rate (a busy sitting makes
        // about one a second), as the fan-out would apply them.
        std::thread::spawn(move || {
            let mut seq = base;
            'writing: while !stop.load(Ordering::Relaxed) {
                for e in &tail {
                    seq += 1;
                    state.apply(seq, e);
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    if stop.load(Ordering::Relaxed) {
                        break 'writing;
                    }
                }
            }
            seq - base
        })
    };
    let queries: Vec<(&str, HashMap<String, String>)> = vec![
        (
            "q=ภาษี (Thai substring)",
            [("q".to_string(), "ภาษี".to_string())].into(),
        ),
        (
            "q=ombudsmen (English)",
            [("q".to_string(), "ombudsmen".to_string())].into(),
        ),
        (
            "q=พ.ร.บ.การศึกษา (abbreviation)",
            [("q".to_string(), "พ.ร.บ.การศึกษา".to_string())].into(),
        ),
        (
            "stage=HOUSE_COMMITTEE",
            [("stage".to_string(), "HOUSE_COMMITTEE".to_string())].into(),
        ),
    ];
    let mut report = Vec::new();
    for (name, params) in &queries {
        let lat = run_readers(&args, |_| {
            state
                .bills(params)
                .map(|b| b["total"].as_u64().unwrap_or(0))
        });
        report.push((name.to_string(), lat));
    }
    let ids = Arc::new(bill_ids);
    let lat = run_readers(&args, |i| {
        let id = &ids[(i * 7919) % ids.len()];
        state.bill(id).map(|_| 1)
    });
    report.push(("/v1/bills/{id}".to_string(), lat));
    stop.store(true, Ordering::Relaxed);
    let applied = writer.join().unwrap();
    println!(
        "latency with {} reader threads ({} requests each) while a writer applied {applied} events at up to 1,000/s (2-core box: readers and writer share the CPUs):",
        args.readers, args.requests
    );
    for (name, (p50, p99, total)) in report {
        println!("  {name}: p50 {p50:.2} ms, p99 {p99:.2} ms (matches: {total})");
    }
}

/// Runs `args.readers` threads of `args.requests` calls each; (p50, p99) in ms.
fn run_readers(args: &Args, call: impl Fn(usize) -> Option<u64> + Sync) -> (f64, f64, u64) {
    let call = &call;
    let results: Vec<(Vec<f64>, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.readers)
            .map(|r| {
                scope.spawn(move || {
                    let mut lat = Vec::with_capacity(args.requests);
                    let mut last = 0;
                    for i in 0..args.requests {
                        let t = Instant::now();
                        last = call(r * args.requests + i).expect("an answer");
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    (lat, last)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = results[0].1;
    let mut all: Vec<f64> = results.into_iter().flat_map(|(l, _)| l).collect();
    let p50 = percentile(&mut all, 0.5);
    let p99 = percentile(&mut all, 0.99);
    (p50, p99, total)
}

/// The real thing: a nats-server holding the history, `sapha hub` started on
/// it twice (a full replay, then from the snapshot it wrote), and concurrent
/// HTTP clients of the state API.
async fn over_http(args: &Args, subjects: &[String], stored: &[Bytes]) -> anyhow::Result<()> {
    use sapha_benches::servers::{http_get, Hub, Nats};
    let nats = Nats::start();
    let client = async_nats::connect(nats.url()).await?;
    let js = async_nats::jetstream::new(client);
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name: "PARL".into(),
        subjects: vec!["parl.v1.>".into()],
        ..Default::default()
    })
    .await?;
    let t = Instant::now();
    for (subjects, payloads) in subjects.chunks(2_000).zip(stored.chunks(2_000)) {
        let mut acks = Vec::with_capacity(payloads.len());
        for (subject, payload) in subjects.iter().zip(payloads) {
            acks.push(js.publish(subject.clone(), payload.clone()).await?);
        }
        for ack in acks {
            ack.await?;
        }
    }
    println!(
        "published {} events into JetStream in {:.1} s",
        stored.len(),
        t.elapsed().as_secs_f64()
    );
    // `env` as the wrapper: the hub is stopped with SIGTERM (so it writes its
    // snapshot) and may take longer than the default deadline to start.
    std::env::set_var("SAPHA_HUB_WRAPPER", "env");
    let settings = [
        "state.requests_per_second=100000".to_string(),
        "state.request_burst=100000".to_string(),
    ];
    let t = Instant::now();
    let hub = Hub::start(&nats, &settings).await?;
    let full = t.elapsed().as_secs_f64();
    let port = hub.port;
    let metric = |text: &str, name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    let m = http_get(port, "/metrics").await.unwrap_or_default();
    println!(
        "hub start, full replay: ready in {full:.1} s (state at {:?}, snapshot {:?})",
        metric(&m, "sapha_hub_state_seq"),
        metric(&m, "sapha_hub_state_snapshot_seq")
    );
    let paths = [
        ("q=ภาษี", "/v1/bills?q=%E0%B8%A0%E0%B8%B2%E0%B8%A9%E0%B8%B5"),
        ("q=ombudsmen", "/v1/bills?q=ombudsmen"),
        ("stage=HOUSE_COMMITTEE", "/v1/bills?stage=HOUSE_COMMITTEE"),
        ("/v1/bills/{id}", "/v1/bills/b-2558-0001"),
    ];
    for (name, path) in paths {
        let mut all = Vec::new();
        let tasks: Vec<_> = (0..args.readers)
            .map(|_| {
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    for _ in 0..args_requests() {
                        let t = Instant::now();
                        let body = http_get(port, path).await.unwrap_or_default();
                        assert!(body.contains("\"seq\""), "{path}: {body}");
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    lat
                })
            })
            .collect();
        for task in tasks {
            all.extend(task.await?);
        }
        let p50 = percentile(&mut all, 0.5);
        let p99 = percentile(&mut all, 0.99);
        println!(
            "  HTTP {name}: p50 {p50:.2} ms, p99 {p99:.2} ms ({} requests, {} concurrent clients)",
            all.len(),
            args.readers
        );
    }
    drop(hub);
    let t = Instant::now();
    let hub = Hub::start(&nats, &settings).await?;
    let from_snapshot = t.elapsed().as_secs_f64();
    let m = http_get(hub.port, "/metrics").await.unwrap_or_default();
    println!(
        "hub start from its snapshot: ready in {from_snapshot:.1} s (snapshot at {:?}); full replay {full:.1} s; ratio {:.1}x faster",
        metric(&m, "sapha_hub_state_snapshot_seq"),
        full / from_snapshot
    );
    Ok(())
}

/// Requests per HTTP client (fewer than in-process: each is a new connection).
fn args_requests() -> usize {
    100
}
