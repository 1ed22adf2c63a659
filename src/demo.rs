//! `sapha demo`: the publisher, the hub and the scenario player in one process,
//! on an in-process bus instead of NATS. It runs the same pipeline and the same
//! hub as production; only the log differs (see the `sapha-bus` crate).
//!
//! # What it plays
//!
//! 1. **At once, at start:** every bill event of the shipped scenarios, merged by
//!    `occurred_at` (see [`merge_by_time`]): the bill browser holds every bill
//!    at its stage as of the scenarios' "now" (4 Dec 2024) within a second.
//! 2. **Then live, on a loop, for as long as it runs:** the scenarios' sittings,
//!    one after another (the joint sitting of 10 Sep 2021, then the Senate sitting
//!    of 28 Feb 2023, then the joint sitting again, ...). The first live sitting
//!    starts just before its first vote opens (what comes before goes at once),
//!    so a vote is being counted within seconds; each later one plays from its
//!    opening (its `scheduled` and `agenda_published` events, days earlier, go
//!    at once).
//!
//! # Fresh ids for a replayed sitting
//!
//! Every event still goes through the [`Pipeline`]: validated, checked against
//! its aggregate's history (per-aggregate `seq` with no gap, unique `event_id`),
//! then appended. A sitting cannot simply be published again: its ids are
//! stored, and a closed sitting does not reopen. So the n-th time a sitting is
//! played (n ≥ 2) it is a **new aggregate**, built by [`replay`]:
//!
//! - sitting id `<id>-r<n>` (`joint-2564-1-10-r2`), so `seq` starts again at 1
//!   with no gap, and its topic is `sitting.<chamber>.<id>-r<n>.*`;
//! - event ids `<event_id>-r<n>`, unique across the stream (ids stay far under
//!   the 64-byte limit);
//! - its title, where an event carries one, ends in `(เล่นซ้ำ ครั้งที่ n)` /
//!   `(replay n)`, so a list of sittings tells the replays apart;
//! - the times (`occurred_at`) are the sitting's own: it is a replay of that
//!   day, with that day's membership (the validation counts tallies against the
//!   chamber as it was then), not a sitting of today;
//! - its `vote.result` events carry no `bill_id`: a replay must not add another
//!   vote to a real bill's history (the bill's `votes`); the vote itself still
//!   names its bill (from `vote.opened`).
//!
//! The first time a sitting is played it is published exactly as in its file.

use anyhow::Context;
use clap::Args;
use sapha_bus::MemoryBus;
use sapha_log::EventLog;
use sapha_proto::event::{Body, Phase};
use sapha_proto::Event;
use sapha_publisher::ingest::{self, IngestConfig, SharedTokens, Tokens};
use sapha_publisher::metrics::Metrics;
use sapha_publisher::pipeline::{Outcome, Pipeline, RetryPolicy};
use sapha_publisher::player::{Pacer, Pacing};
use std::sync::Arc;
use std::time::Duration;

/// One scenario file the demo replays, shipped inside the binary.
struct Scenario {
    name: &'static str,
    /// What it holds, for the startup text.
    what: &'static str,
    text: &'static str,
}

/// The scenarios the demo plays. The files are not changed.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "joint-2564-09-10",
        what: "the joint sitting of 10 Sep 2021 (พ.ศ. 2564) and the history of the amendment it passed",
        text: include_str!("../scenarios/joint-2564-09-10.ndjson"),
    },
    Scenario {
        name: "senate-2566-02-28",
        what: "an illustrative bill's history, then Senate sitting no. 28 of 28 Feb 2023 (พ.ศ. 2566)",
        text: include_str!("../scenarios/senate-2566-02-28.ndjson"),
    },
    Scenario {
        name: "bills-generated",
        what: "200 generated bill histories (illustrative, พ.ศ. 2566–2567)",
        text: include_str!("../scenarios/bills-generated.ndjson"),
    },
];

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where the hub listens (dashboard, /v1/ws, /v1/sse, /metrics); port 0
    /// picks a free port (the startup text says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Where the ingest endpoint listens (POST /v1/events).
    #[arg(long, default_value = "127.0.0.1:8081")]
    ingest_listen: String,
    /// Speed-up over real time for the live sittings (each wait is also capped
    /// by `--max-gap-secs`). `max` (or 0) first publishes every scenario event
    /// at once (each sitting in full, with its own ids), then plays the
    /// sittings live on a loop at real time, since a sitting at `max` is never
    /// live.
    #[arg(long, default_value = "1", value_parser = crate::publish::parse_speed)]
    speed: f64,
    /// Longest wait between two live events, in seconds.
    #[arg(long, default_value_t = 2.0)]
    max_gap_secs: f64,
}

/// The shipped scenarios, split the way the demo plays them.
struct Feed {
    /// Every bill event of every file, merged by `occurred_at`.
    bills: Vec<Event>,
    /// Each sitting's events in file order, sittings in order of their first event.
    sittings: Vec<Vec<Event>>,
}

impl Feed {
    fn shipped() -> Feed {
        let files: Vec<Vec<Event>> = SCENARIOS
            .iter()
            .map(|s| {
                s.text
                    .lines()
                    .filter(|line| !line.trim().is_empty())
                    .map(|line| Event::from_json(line).expect("a shipped scenario event parses"))
                    .collect()
            })
            .collect();
        Feed::split(&files)
    }

    fn split(files: &[Vec<Event>]) -> Feed {
        let bill_files: Vec<Vec<Event>> = files
            .iter()
            .map(|f| f.iter().filter(|e| is_bill(e)).cloned().collect())
            .collect();
        let mut sittings: Vec<Vec<Event>> = Vec::new();
        for event in files.iter().flatten().filter(|e| !is_bill(e)) {
            match sittings
                .iter_mut()
                .find(|s| s[0].aggregate_id == event.aggregate_id)
            {
                Some(sitting) => sitting.push(event.clone()),
                None => sittings.push(vec![event.clone()]),
            }
        }
        sittings.sort_by_key(|s| s[0].occurred_at);
        Feed {
            bills: merge_by_time(bill_files),
            sittings,
        }
    }
}

fn is_bill(event: &Event) -> bool {
    matches!(event.body, Body::BillStageChanged(_))
}

/// What one publishing step did, for the log.
#[derive(Debug, Default)]
struct Counts {
    stored: usize,
    rejected: usize,
}

/// Submits one event through the pipeline; a rejection is logged and counted
/// (it would be a bug in the demo's feed: the feed is tested to be accepted).
async fn submit<L: EventLog>(pipeline: &Pipeline<L>, event: Event, counts: &mut Counts) {
    let id = event.event_id.clone();
    match pipeline.submit(event, "scenario").await {
        Ok(Outcome::Stored { .. } | Outcome::Duplicate) => counts.stored += 1,
        Err(e) => {
            counts.rejected += 1;
            tracing::error!(event_id = %id, code = e.code(), error = %e, "demo event rejected");
        }
    }
}

/// Where a live pass of a sitting starts playing in real time: before that,
/// its events go at once. The first live pass starts at its first
/// `vote.opened` (a vote is counted within seconds of start); later passes at
/// `sitting.lifecycle` `opened`.
fn live_from(events: &[Event], first_pass: bool) -> usize {
    let starts = |e: &Event| match &e.body {
        Body::VoteOpened(_) => first_pass,
        Body::SittingLifecycle(l) => !first_pass && l.phase == Phase::Opened,
        _ => false,
    };
    events.iter().position(starts).unwrap_or(0)
}

/// Plays the demo: the bills at once, then the sittings live on a loop, never
/// returning. `pacing.speed` 0 (`max`) publishes every sitting once at once
/// first, then loops at real time.
async fn play<L: EventLog>(pipeline: Arc<Pipeline<L>>, feed: Feed, mut pacing: Pacing) {
    let mut counts = Counts::default();
    for event in feed.bills {
        submit(&pipeline, event, &mut counts).await;
    }
    // How many times each sitting has been played so far.
    let mut played = vec![0u32; feed.sittings.len()];
    if pacing.speed <= 0.0 {
        for (i, sitting) in feed.sittings.iter().enumerate() {
            for event in sitting {
                submit(&pipeline, event.clone(), &mut counts).await;
            }
            played[i] = 1;
        }
        pacing.speed = 1.0;
    }
    tracing::info!(
        stored = counts.stored,
        rejected = counts.rejected,
        "demo: the bills (and at --speed max every sitting) published at once; sittings now live on a loop"
    );
    if feed.sittings.is_empty() {
        return;
    }
    let mut first_pass = true;
    for i in (0..feed.sittings.len()).cycle() {
        played[i] += 1;
        let events = replay(&feed.sittings[i], played[i]);
        let live = live_from(&events, first_pass);
        first_pass = false;
        let mut pacer = Pacer::new(pacing);
        for (k, event) in events.into_iter().enumerate() {
            if k >= live {
                pacer.wait_for(event.occurred_at).await;
            }
            submit(&pipeline, event, &mut counts).await;
        }
        tracing::info!(
            sitting = %feed.sittings[i][0].aggregate_id,
            time = played[i],
            stored = counts.stored,
            rejected = counts.rejected,
            "demo: a live sitting closed; the next one opens"
        );
        // The closed sitting stays on screen a moment before the next opens.
        tokio::time::sleep(pacing.max_gap).await;
    }
}

/// The events of a sitting for the `n`-th time it is played (1 = its own
/// events, unchanged); see the module docs for what a replay changes and why.
fn replay(events: &[Event], n: u32) -> Vec<Event> {
    if n <= 1 {
        return events.to_vec();
    }
    events
        .iter()
        .map(|event| {
            let mut value = serde_json::to_value(event).expect("an event serializes");
            let suffix = format!("-r{n}");
            let fresh = |v: &mut serde_json::Value| {
                if let Some(s) = v.as_str() {
                    *v = format!("{s}{suffix}").into();
                }
            };
            fresh(&mut value["event_id"]);
            fresh(&mut value["aggregate_id"]);
            if !value["supersedes"].is_null() {
                fresh(&mut value["supersedes"]);
            }
            let data = &mut value["data"];
            fresh(&mut data["sitting"]["sitting_id"]);
            if event.body.kind() == "vote.result" {
                if let Some(data) = data.as_object_mut() {
                    data.remove("bill_id");
                }
            }
            if let Some(title) = data.get_mut("title").filter(|t| t.is_object()) {
                let mark = |t: &mut serde_json::Value, words: String| {
                    if let Some(s) = t.as_str().filter(|s| !s.is_empty()) {
                        *t = format!("{s} ({words})").into();
                    }
                };
                mark(&mut title["th"], format!("เล่นซ้ำ ครั้งที่ {n}"));
                mark(&mut title["en"], format!("replay {n}"));
            }
            Event::from_value(value).expect("a replayed event is still an event")
        })
        .collect()
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    let bus = MemoryBus::default();
    let pipeline = Arc::new(Pipeline::new(
        bus.clone(),
        RetryPolicy::default(),
        10_000,
        Arc::new(Metrics::default()),
    ));

    let hub_args = crate::hub::HubArgs {
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

    let feed = Feed::shipped();
    let bills = feed.bills.len();
    println!("Sapha demo: the shipped scenarios (scenarios/README.md):");
    let mut spans: Vec<_> = SCENARIOS.iter().map(|s| (span(s.text), s)).collect();
    spans.sort_by(|a, b| a.0 .0.cmp(&b.0 .0));
    for ((first, last), s) in spans {
        println!("  {first} to {last}  {}: {}", s.name, s.what);
    }
    println!("Now: every bill's history ({bills} events), at once: each bill at its stage as of the end of the scenarios.");
    if args.speed > 0.0 {
        println!(
            "Then, on a loop: the sittings live, one after another, at {}x real time, at most {} s between two events;",
            args.speed, args.max_gap_secs
        );
    } else {
        println!("With --speed max: every sitting at once too; then, on a loop: the sittings live at real time, at most {} s between two events;", args.max_gap_secs);
    }
    println!("the first starts just before its first vote. A replayed sitting has its own ids: `<sitting id>-r<n>`.");
    println!(
        "Dates are UTC. The dashboard dates each panel by its own events, not by today's date.\n"
    );
    println!("  dashboard   http://{hub_addr}/");
    println!("  websocket   websocat 'ws://{hub_addr}/v1/ws?topics=sitting.>'");
    println!("  sse         curl -N 'http://{hub_addr}/v1/sse?topics=bill.*.stage'");
    println!("  state       curl 'http://{hub_addr}/v1/sittings/live'");
    println!("  metrics     http://{hub_addr}/metrics");
    println!("  ingest      curl -H 'authorization: Bearer {token}' -H 'content-type: application/json' \\");
    println!("                   --data @event.json http://{ingest_addr}/v1/events\n");
    println!("Ctrl-C stops.");

    let pacing = Pacing {
        speed: args.speed,
        max_gap: Duration::from_secs_f64(args.max_gap_secs),
    };
    tokio::spawn(play(pipeline, feed, pacing));
    hub.await
        .context("the hub task")?
        .context("running the hub")?;
    Ok(())
}

/// The first and last `occurred_at` day of a scenario file (UTC), for the startup text.
fn span(text: &str) -> (String, String) {
    let days: Vec<_> = text
        .lines()
        .filter_map(|line| Event::from_json(line).ok())
        .map(|e| e.occurred_at.date_naive())
        .collect();
    let first = days.iter().min().map_or("?".to_owned(), |d| d.to_string());
    let last = days.iter().max().map_or("?".to_owned(), |d| d.to_string());
    (first, last)
}

/// Merges lists of events into one by `occurred_at` (see [`merge_by`]).
pub(crate) fn merge_by_time(lists: Vec<Vec<Event>>) -> Vec<Event> {
    merge_by(lists, |e| e.occurred_at.timestamp_millis())
}

/// Merges lists into one by `key`, keeping each list's own order (a file may
/// hold a day-precision event, at midnight UTC, right after an instant of the
/// same day; it is not moved). At each step the list whose next item has the
/// smallest key goes first; a tie goes to the list given first. `sapha play`
/// merges its files the same way.
pub(crate) fn merge_by<T, K: Ord>(lists: Vec<Vec<T>>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut queues: Vec<std::collections::VecDeque<T>> =
        lists.into_iter().map(Into::into).collect();
    let mut merged = Vec::with_capacity(queues.iter().map(|q| q.len()).sum());
    loop {
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, queue)| queue.front().map(|item| (key(item), i)))
            .min();
        let Some((_, i)) = next else { break };
        merged.push(queues[i].pop_front().expect("a front item"));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapha_bus::MemoryBus;
    use std::collections::HashSet;

    #[test]
    fn the_bills_go_first_merged_by_time_and_every_event_is_played() {
        let feed = Feed::shipped();
        let total: usize = SCENARIOS
            .iter()
            .map(|s| s.text.lines().filter(|l| !l.trim().is_empty()).count())
            .sum();
        let sitting_events: usize = feed.sittings.iter().map(Vec::len).sum();
        assert_eq!(feed.bills.len() + sitting_events, total);
        assert!(feed.bills.iter().all(is_bill));
        let ids: Vec<_> = feed
            .sittings
            .iter()
            .map(|s| s[0].aggregate_id.as_str())
            .collect();
        assert_eq!(ids, ["joint-2564-1-10", "senate-2566-2-28"]);
        // By Bangkok day, time never goes back (within a day, a day-precision
        // event at midnight UTC may follow an instant of the same day).
        let mut previous = None;
        for event in &feed.bills {
            let day = (event.occurred_at + Duration::from_secs(7 * 3600)).date_naive();
            if let Some(previous) = previous {
                assert!(day >= previous, "{} goes back to {day}", event.event_id);
            }
            previous = Some(day);
        }
    }

    #[test]
    fn merging_keeps_each_list_in_order_and_breaks_ties_by_list() {
        let at = |id: &str, t: &str| {
            let mut e = sapha_proto::examples::one_of_each_kind()[0].clone();
            e.event_id = id.into();
            e.occurred_at = t.parse().expect("an RFC 3339 time");
            e
        };
        let a = vec![
            at("a1", "2021-01-01T00:00:00Z"),
            at("a2", "2021-01-03T00:00:00Z"),
        ];
        let b = vec![
            at("b1", "2021-01-02T00:00:00Z"),
            at("b2", "2021-01-03T00:00:00Z"),
        ];
        let merged: Vec<_> = merge_by_time(vec![a, b])
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(merged, ["a1", "b1", "a2", "b2"]);
        // An earlier event later in its list does not jump ahead of its own list.
        let a = vec![
            at("a1", "2021-01-05T00:00:00Z"),
            at("a2", "2021-01-01T00:00:00Z"),
        ];
        let b = vec![at("b1", "2021-01-02T00:00:00Z")];
        let merged: Vec<_> = merge_by_time(vec![a, b])
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(merged, ["b1", "a1", "a2"]);
    }

    #[test]
    fn the_first_live_pass_starts_at_its_first_vote_and_later_ones_at_the_opening() {
        let feed = Feed::shipped();
        for sitting in &feed.sittings {
            let first = live_from(sitting, true);
            assert_eq!(sitting[first].body.kind(), "vote.opened");
            assert!(sitting[..first]
                .iter()
                .all(|e| e.body.kind() != "vote.opened"));
            let later = live_from(sitting, false);
            match &sitting[later].body {
                Body::SittingLifecycle(l) => assert_eq!(l.phase, Phase::Opened),
                other => panic!("starts at {}", other.kind()),
            }
        }
    }

    /// Every pass of every sitting, replays included, is accepted by the same
    /// pipeline as production, after the bills; replays have fresh ids, mark
    /// their titles and add no vote to a real bill.
    #[tokio::test]
    async fn every_pass_of_every_sitting_is_accepted_with_fresh_ids() {
        let bus = MemoryBus::default();
        let pipeline = Pipeline::new(
            bus.clone(),
            RetryPolicy::default(),
            10_000,
            Arc::new(Metrics::default()),
        );
        let feed = Feed::shipped();
        let mut counts = Counts::default();
        for event in feed.bills.clone() {
            submit(&pipeline, event, &mut counts).await;
        }
        let mut ids = HashSet::new();
        for n in 1..=3 {
            for sitting in &feed.sittings {
                let events = replay(sitting, n);
                for (k, event) in events.iter().enumerate() {
                    assert!(ids.insert(event.event_id.clone()), "{}", event.event_id);
                    assert_eq!(event.seq, k as u64 + 1);
                    if n > 1 {
                        assert_eq!(
                            event.aggregate_id,
                            format!("{}-r{n}", sitting[0].aggregate_id)
                        );
                        if let Body::VoteResult(v) = &event.body {
                            assert_eq!(v.bill_id, None);
                        }
                        if let Body::SittingLifecycle(l) = &event.body {
                            if let Some(title) = &l.title {
                                assert!(title.en.ends_with(&format!("(replay {n})")));
                                assert!(title.th.ends_with(&format!("(เล่นซ้ำ ครั้งที่ {n})")));
                            }
                        }
                    } else {
                        assert_eq!(event, &sitting[k]);
                    }
                    let before = counts.stored;
                    submit(&pipeline, event.clone(), &mut counts).await;
                    assert_eq!(counts.stored, before + 1, "{event} accepted");
                }
            }
        }
        assert_eq!(counts.rejected, 0);
        // The real bills were voted on once each, by the first pass only.
        let mut projection = sapha_proto::projection::Projection::default();
        for (i, stored) in bus
            .history(sapha_proto::subject::STREAM_SUBJECTS.into())
            .await
            .unwrap()
            .iter()
            .enumerate()
        {
            projection.apply(i as u64 + 1, &stored.event);
        }
        for bill in ["b-2564-ca-0001", "b-2565-0087"] {
            let votes = &projection.bills[bill].votes;
            assert!(!votes.is_empty());
            assert!(
                votes.iter().all(|v| !v.sitting_id.contains("-r")),
                "{votes:?}"
            );
        }
        assert_eq!(projection.sittings.len(), 6);
    }
}
