//! `sapha demo`: the publisher, the hub and the scenario player in one process,
//! on an in-process bus instead of NATS. It runs the same pipeline and the same
//! hub as production; only the log differs (see the `sapha-bus` crate).

use anyhow::Context;
use clap::Args;
use sapha_bus::MemoryBus;
use sapha_publisher::file::publish_ndjson;
use sapha_publisher::ingest::{self, IngestConfig, SharedTokens, Tokens};
use sapha_publisher::metrics::Metrics;
use sapha_publisher::pipeline::{Pipeline, RetryPolicy};
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

/// The scenarios the demo replays. They are replayed as one feed, merged by
/// `occurred_at` (see [`merge_by_time`]), so that time on the dashboard only
/// moves forward: the 2021 joint sitting, then the bill and Senate sitting of
/// 2022–23, then the generated bills of 2023–24. The files are not changed.
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
    /// Where the hub listens (dashboard, /v1/ws, /v1/sse, /metrics).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Where the ingest endpoint listens (POST /v1/events).
    #[arg(long, default_value = "127.0.0.1:8081")]
    ingest_listen: String,
    /// Speed-up over real time for the replayed sittings; `max` (or 0) replays
    /// at once, in order.
    #[arg(long, default_value = "1", value_parser = crate::publish::parse_speed)]
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

    let texts: Vec<&str> = SCENARIOS.iter().map(|s| s.text).collect();
    let (feed, events) = merge_by_time(&texts);
    println!(
        "Sapha demo: replaying {events} events as one feed in the order they happened (by occurred_at),"
    );
    if args.speed > 0.0 {
        println!(
            "at {}x real time, at most {} s between two events:",
            args.speed, args.max_gap_secs
        );
    } else {
        println!("all at once:");
    }
    let mut spans: Vec<_> = SCENARIOS.iter().map(|s| (span(s.text), s)).collect();
    spans.sort_by(|a, b| a.0 .0.cmp(&b.0 .0));
    for ((first, last), s) in spans {
        println!("  {first} to {last}  {}: {}", s.name, s.what);
    }
    println!(
        "Dates are UTC. The dashboard dates each panel by its own events, not by today's date.\n"
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
    tokio::spawn(async move {
        let report = publish_ndjson(
            &pipeline,
            feed.as_bytes(),
            None,
            Some(Pacer::new(pacing)),
            "scenario",
            std::future::pending(),
        )
        .await;
        match report {
            Ok(report) => tracing::info!(%report, "scenarios replayed"),
            Err(e) => tracing::error!(error = %e, "replaying the scenarios failed"),
        }
    });
    hub.await
        .context("the hub task")?
        .context("running the hub")?;
    Ok(())
}

/// The first and last `occurred_at` day of a scenario file (UTC), for the startup text.
fn span(text: &str) -> (String, String) {
    let days: Vec<_> = text
        .lines()
        .filter_map(|line| sapha_proto::Event::from_json(line).ok())
        .map(|e| e.occurred_at.date_naive())
        .collect();
    let first = days.iter().min().map_or("?".to_owned(), |d| d.to_string());
    let last = days.iter().max().map_or("?".to_owned(), |d| d.to_string());
    (first, last)
}

/// Merges the scenario files into one NDJSON feed by `occurred_at`, keeping each
/// file's own order (a file may hold a day-precision event, at midnight UTC,
/// right after an instant of the same day; it is not moved). At each step the
/// file whose next event is earliest goes first; a tie goes to the file listed
/// first. A line that does not parse goes as soon as it is next in its file
/// (the pipeline then rejects it and says why). Returns the feed and its number
/// of lines.
fn merge_by_time(files: &[&str]) -> (String, usize) {
    let mut queues: Vec<std::collections::VecDeque<_>> = files
        .iter()
        .map(|text| {
            text.lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| {
                    let at = sapha_proto::Event::from_json(line)
                        .ok()
                        .map(|e| e.occurred_at);
                    (at, line)
                })
                .collect()
        })
        .collect();
    let mut feed = String::new();
    let mut events = 0;
    loop {
        // `None` (a line without a time) sorts before every time.
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(i, queue)| queue.front().map(|(at, _)| (*at, i)))
            .min();
        let Some((_, i)) = next else { break };
        let (_, line) = queues[i].pop_front().expect("a front line");
        feed.push_str(line);
        feed.push('\n');
        events += 1;
    }
    (feed, events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_feed_moves_forward_in_time_and_keeps_every_event() {
        let texts: Vec<&str> = SCENARIOS.iter().map(|s| s.text).collect();
        let (feed, events) = merge_by_time(&texts);
        let total: usize = texts
            .iter()
            .map(|text| text.lines().filter(|l| !l.trim().is_empty()).count())
            .sum();
        assert_eq!(events, total);
        assert_eq!(feed.lines().count(), total);
        // By Bangkok day, time never goes back (within a day, a day-precision
        // event at midnight UTC may follow an instant of the same day).
        let mut previous = None;
        for line in feed.lines() {
            let event = sapha_proto::Event::from_json(line).expect("a valid event");
            let day = (event.occurred_at + std::time::Duration::from_secs(7 * 3600)).date_naive();
            if let Some(previous) = previous {
                assert!(day >= previous, "{} goes back to {day}", event.event_id);
            }
            previous = Some(day);
        }
    }

    #[test]
    fn merging_puts_the_earlier_file_first_whatever_the_listed_order() {
        let (joint, senate) = (SCENARIOS[0].text, SCENARIOS[1].text);
        let (feed, _) = merge_by_time(&[senate, joint]);
        assert_eq!(feed, format!("{joint}{senate}"));
        // Lines that do not parse keep their place in their file and go first.
        let (feed, n) = merge_by_time(&["x\ny\n", "z\n"]);
        assert_eq!((feed.as_str(), n), ("x\ny\nz\n", 3));
    }
}
