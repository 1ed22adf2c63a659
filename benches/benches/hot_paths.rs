//! Criterion micro-benchmarks of the hub's hot paths, each beside the naive way
//! it replaces, measured in the same run:
//!
//! - `match_10k`: the subscription index vs a linear scan of 10,000 filters;
//! - `encode`: one prepared event shared by 100 clients vs encoding per client;
//! - `queue`: queueing one event on 1,000 connections' bounded queues.
//!
//! `cargo bench -p sapha-benches --bench hot_paths`. Under `cargo test` each
//! benchmark runs once, as a smoke test.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sapha_benches::workload;
use sapha_hub::bench_api::{Index, Prepared, Queue};
use sapha_proto::{Event, TopicFilter};
use std::hint::black_box;

/// Clients that receive the same event in the `encode` benchmark.
const CLIENTS_PER_EVENT: usize = 100;
/// Connections an event is queued on in the `queue` benchmark.
const QUEUES: usize = 1_000;

fn match_10k(c: &mut Criterion) {
    let filters = workload::mixed_filters(10_000);
    let mut index = Index::new();
    for (i, f) in filters.iter().enumerate() {
        index.insert(f, i as u64);
    }
    let topics = workload::sample_topics();
    let mut group = c.benchmark_group("match_10k");
    group.throughput(Throughput::Elements(topics.len() as u64));
    let mut out = Vec::with_capacity(1024);
    group.bench_function("index", |b| {
        b.iter(|| {
            let mut n = 0;
            for t in &topics {
                out.clear();
                index.lookup(black_box(t), &mut out);
                n += out.len();
            }
            n
        })
    });
    group.bench_function("linear_scan", |b| {
        b.iter(|| {
            let mut n = 0;
            for t in &topics {
                n += filters
                    .iter()
                    .filter(|f: &&TopicFilter| f.matches(black_box(t)))
                    .count();
            }
            n
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let events = sapha_proto::examples::one_of_each_kind();
    let payloads: Vec<Bytes> = events
        .iter()
        .map(|e| Bytes::from(e.encode_proto()))
        .collect();
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(
        (payloads.len() * CLIENTS_PER_EVENT) as u64,
    ));
    for format in ["json", "proto"] {
        group.bench_function(BenchmarkId::new("prepared_once", format), |b| {
            b.iter(|| {
                let mut bytes = 0;
                for (seq, payload) in payloads.iter().enumerate() {
                    let p = Prepared::decode(seq as u64, payload.clone()).expect("an event");
                    for _ in 0..CLIENTS_PER_EVENT {
                        // What each client gets: a reference-counted handle.
                        let shared = p.clone();
                        bytes += if format == "json" {
                            shared.json().len()
                        } else {
                            shared.proto().len()
                        };
                    }
                }
                bytes
            })
        });
        group.bench_function(BenchmarkId::new("per_client", format), |b| {
            b.iter(|| {
                let mut bytes = 0;
                for (seq, payload) in payloads.iter().enumerate() {
                    for _ in 0..CLIENTS_PER_EVENT {
                        // A subscriber that decodes and re-encodes for every client.
                        let p = Prepared::decode(seq as u64, payload.clone()).expect("an event");
                        bytes += if format == "json" {
                            p.json().len()
                        } else {
                            p.proto().len()
                        };
                    }
                }
                bytes
            })
        });
    }
    group.finish();
}

fn queue(c: &mut Criterion) {
    let event: Event = sapha_proto::examples::one_of_each_kind().remove(0);
    let p = Prepared::decode(1, Bytes::from(event.encode_proto())).expect("an event");
    let mut queues: Vec<Queue> = (0..QUEUES).map(|_| Queue::new(512)).collect();
    let mut group = c.benchmark_group("queue");
    group.throughput(Throughput::Elements(QUEUES as u64));
    group.bench_function("push_1000_then_drain", |b| {
        b.iter(|| {
            let mut ok = 0;
            for q in &queues {
                ok += usize::from(q.push(&p));
            }
            for q in &mut queues {
                q.drain();
            }
            ok
        })
    });
    group.finish();
}

criterion_group!(benches, match_10k, encode, queue);
criterion_main!(benches);
