//! The publisher against a real nats-server: files, dedupe, stage rules from the
//! stored history, and a NATS restart mid-publish.

use sapha_proto::examples::one_of_each_kind;
use sapha_proto::stage::Stage::*;
use sapha_publisher::file::publish_ndjson;
use sapha_publisher::jetstream::{JetStreamLog, StreamSettings};
use sapha_publisher::metrics::Metrics;
use sapha_publisher::pipeline::{Outcome, Pipeline, RetryPolicy, SubmitError};
use sapha_tests::fixtures::*;
use sapha_tests::{wait_until, NatsServer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;

const STREAM: &str = "PARL";

fn settings() -> StreamSettings {
    StreamSettings {
        ack_timeout: Duration::from_secs(1),
        ..stream_settings()
    }
}

async fn pipeline(server: &NatsServer) -> Arc<Pipeline<JetStreamLog>> {
    let log = JetStreamLog::open(&server.url(), &settings())
        .await
        .expect("stream ready");
    let retry = RetryPolicy {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        give_up_after: Duration::from_secs(60),
    };
    Arc::new(Pipeline::new(
        log,
        retry,
        1000,
        Arc::new(Metrics::default()),
    ))
}

async fn publish_file(
    p: &Pipeline<JetStreamLog>,
    file: &tempfile::NamedTempFile,
) -> sapha_publisher::file::Report {
    let f = tokio::fs::File::open(file.path()).await.unwrap();
    publish_ndjson(
        p,
        BufReader::new(f),
        None,
        None,
        "file",
        std::future::pending(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_file_is_stored_once_in_order_on_the_right_subjects() {
    let server = NatsServer::start();
    let p = pipeline(&server).await;
    let mut events = one_of_each_kind();
    // The bill example is seq 6 of its bill; give it the five stages before it.
    let bill = events.remove(0);
    let mut all = bill_history(
        "b-2564-ca-0001",
        &[Proposed, JointR1, ParliamentCommittee, JointR2, JointR3],
    );
    for e in &mut all {
        let sapha_proto::Body::BillStageChanged(b) = &mut e.body else {
            unreachable!()
        };
        b.bill_type = sapha_proto::stage::BillType::ConstitutionalAmendment;
        // 20 days apart, up to the third reading: the 15-day wait holds (s.256 (5)).
        e.occurred_at = bill.occurred_at - chrono::Duration::days(20 * (6 - e.seq as i64));
    }
    all.push(bill);
    all.extend(events);
    let file = ndjson_file(&all);

    let report = publish_file(&p, &file).await;
    assert_eq!(report.rejected, vec![], "nothing is rejected");
    assert_eq!(report.stored, all.len());

    let stored = read_stream(&server.url(), STREAM).await;
    assert_eq!(stored.len(), all.len(), "every event once");
    for (sent, got) in all.iter().zip(&stored) {
        assert_eq!(got.event.event_id, sent.event_id, "same order");
        assert_eq!(got.subject, sent.subject());
        assert_eq!(
            got.msg_id.as_deref(),
            Some(sent.event_id.as_str()),
            "Nats-Msg-Id is the event id"
        );
        assert!(
            got.event.recorded_at.is_some(),
            "the publisher stamps recorded_at"
        );
        let mut without_recorded = got.event.clone();
        without_recorded.recorded_at = sent.recorded_at;
        assert_eq!(&without_recorded, sent, "stored event equals the sent one");
    }
    assert!(stored.windows(2).all(|w| w[0].stream_seq < w[1].stream_seq));
}

#[tokio::test]
async fn the_same_events_twice_are_stored_once_even_after_a_restart() {
    let server = NatsServer::start();
    let events = interleaved_bills(5, 6);
    let file = ndjson_file(&events);

    let first = pipeline(&server).await;
    assert_eq!(publish_file(&first, &file).await.stored, 30);
    let again = publish_file(&first, &file).await;
    assert_eq!(
        (again.stored, again.duplicates, again.rejected.len()),
        (0, 30, 0)
    );

    // A new publisher knows the history from JetStream itself.
    drop(first);
    let restarted = pipeline(&server).await;
    let third = publish_file(&restarted, &file).await;
    assert_eq!(
        (third.stored, third.duplicates, third.rejected.len()),
        (0, 30, 0)
    );
    assert_eq!(stream_len(&server.url(), STREAM).await, 30);
}

#[tokio::test]
async fn an_illegal_transition_is_rejected_and_nothing_is_stored() {
    let server = NatsServer::start();
    let p = pipeline(&server).await;
    for e in bill_history("b-2566-0123", &[Proposed, HouseR1]) {
        assert!(matches!(
            p.submit(e, "test").await,
            Ok(Outcome::Stored { .. })
        ));
    }
    // Skipping the committee and second reading is illegal.
    let skip = bill_event("b-2566-0123", 3, Some(HouseR1), HouseR3);
    let err = p.submit(skip, "test").await.unwrap_err();
    assert_eq!(err.code(), "illegal_transition", "{err}");
    assert_eq!(stream_len(&server.url(), STREAM).await, 2);

    // A restarted publisher reads the bill's stage back from JetStream: an event
    // that claims the bill is somewhere else is refused.
    drop(p);
    let p = pipeline(&server).await;
    let wrong_from = bill_event("b-2566-0123", 3, Some(HouseCommittee), HouseR2);
    let err = p.submit(wrong_from, "test").await.unwrap_err();
    assert_eq!(
        err,
        SubmitError::StageMismatch {
            expected: Some(HouseR1),
            got: Some(HouseCommittee)
        }
    );
    let gap = bill_event("b-2566-0123", 5, Some(HouseR1), HouseCommittee);
    assert_eq!(p.submit(gap, "test").await.unwrap_err().code(), "seq_gap");
    let next = bill_event("b-2566-0123", 3, Some(HouseR1), HouseCommittee);
    assert!(matches!(
        p.submit(next, "test").await,
        Ok(Outcome::Stored { .. })
    ));
    assert_eq!(stream_len(&server.url(), STREAM).await, 3);
    let metrics = p.metrics().render();
    assert!(metrics.contains("reason=\"stage_mismatch\""), "{metrics}");
    assert!(metrics.contains("reason=\"seq_gap\""), "{metrics}");
}

#[tokio::test]
async fn a_reused_seq_or_event_id_is_a_conflict_not_a_duplicate() {
    let server = NatsServer::start();
    let p = pipeline(&server).await;
    let e1 = bill_event("b-2566-0001", 1, None, Proposed);
    p.submit(e1.clone(), "test").await.unwrap();
    let mut other = bill_event("b-2566-0001", 1, None, Proposed);
    other.event_id = "e-something-else".into();
    assert_eq!(
        p.submit(other, "test").await.unwrap_err().code(),
        "seq_conflict"
    );
    // Another bill's event under an id already stored.
    let mut reused = bill_event("b-2566-0002", 1, None, Proposed);
    reused.event_id = e1.event_id.clone();
    assert_eq!(
        p.submit(reused, "test").await.unwrap_err().code(),
        "event_id_reused"
    );
    assert_eq!(stream_len(&server.url(), STREAM).await, 1);
}

#[tokio::test]
async fn stopping_nats_mid_publish_loses_and_duplicates_nothing() {
    let mut server = NatsServer::start();
    let p = pipeline(&server).await;
    let events = interleaved_bills(40, 10); // 400 events
    let file = ndjson_file(&events);
    let publisher = {
        let p = p.clone();
        let path = file.path().to_owned();
        tokio::spawn(async move {
            let f = tokio::fs::File::open(path).await.unwrap();
            publish_ndjson(
                &p,
                BufReader::new(f),
                None,
                None,
                "file",
                std::future::pending(),
            )
            .await
        })
    };
    let url = server.url();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let url = url.clone();
            async move { stream_len(&url, STREAM).await >= 100 }
        })
        .await,
        "publishing started"
    );
    server.kill();
    // Wait until the publisher has noticed and is retrying, then bring NATS back.
    assert!(
        wait_until(Duration::from_secs(30), || {
            let m = p.metrics().render();
            async move {
                m.lines()
                    .any(|l| l.starts_with("sapha_publisher_retries_total") && !l.ends_with(" 0"))
            }
        })
        .await,
        "the publisher retried while NATS was down"
    );
    server.restart();
    let report = tokio::time::timeout(Duration::from_secs(90), publisher)
        .await
        .expect("publishing finishes after NATS is back")
        .unwrap()
        .unwrap();
    assert_eq!(report.rejected, vec![]);
    assert_eq!(report.stored + report.duplicates, 400);

    let stored = read_stream(&server.url(), STREAM).await;
    let ids: Vec<&str> = stored.iter().map(|s| s.event.event_id.as_str()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 400, "every event stored");
    assert_eq!(ids.len(), 400, "no event stored twice");
    // Each bill's events are in order.
    for b in 0..40 {
        let bill = format!("b-2566-{b:04}");
        let seqs: Vec<u64> = stored
            .iter()
            .filter(|s| s.event.aggregate_id == bill)
            .map(|s| s.event.seq)
            .collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "{bill}");
    }
}

#[tokio::test]
async fn an_unreachable_nats_fails_with_a_clear_message() {
    let server = NatsServer::start();
    let url = server.url();
    drop(server);
    let err = JetStreamLog::open(&url, &settings())
        .await
        .err()
        .expect("no server there");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot reach NATS at {url}")),
        "{text}"
    );
}

#[tokio::test]
async fn a_conflicting_stream_config_fails_with_a_clear_message() {
    let server = NatsServer::start();
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    // Another stream already owns Sapha's subjects.
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "OTHER".into(),
        subjects: vec!["parl.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let err = JetStreamLog::open(&server.url(), &settings())
        .await
        .err()
        .expect("conflict");
    let text = err.to_string();
    assert!(
        text.starts_with("stream 'PARL' cannot be created or updated"),
        "{text}"
    );
}

#[tokio::test]
async fn the_shipped_scenarios_play_into_jetstream_once_in_order() {
    use sapha_publisher::player::{Pacer, Pacing};
    let server = NatsServer::start();
    let p = pipeline(&server).await;
    let mut sent = Vec::new();
    for (name, events) in sapha_publisher::scenario::all_scenarios() {
        let path = sapha_tests::repo_root().join("scenarios").join(name);
        let f = tokio::fs::File::open(&path)
            .await
            .expect("scenario file is shipped");
        let pacer = Pacer::new(Pacing {
            speed: 0.0,
            max_gap: Duration::ZERO,
        });
        let report = publish_ndjson(
            &p,
            BufReader::new(f),
            None,
            Some(pacer),
            "scenario",
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(report.rejected, vec![], "{name}");
        assert_eq!(report.stored, events.len(), "{name}");
        sent.extend(events);
    }
    let stored = read_stream(&server.url(), STREAM).await;
    assert_eq!(stored.len(), sent.len());
    for (s, e) in stored.iter().zip(&sent) {
        assert_eq!(s.event.event_id, e.event_id);
        assert_eq!(s.subject, e.subject());
    }
}

#[tokio::test]
async fn nothing_of_an_in_camera_sitting_is_published_until_it_ends() {
    use sapha_proto::event::{Body, Phase};
    let server = NatsServer::start();
    let p = pipeline(&server).await;
    let examples = one_of_each_kind();
    let kind = |k: &str| {
        examples
            .iter()
            .find(|e| e.body.kind() == k)
            .unwrap()
            .clone()
    };
    let at = |mut e: sapha_proto::Event, seq: u64| {
        e.seq = seq;
        e.event_id = format!("e-camera-{seq}");
        e
    };
    let lifecycle = |seq: u64, phase: Phase| {
        let mut e = at(kind("sitting.lifecycle"), seq);
        let Body::SittingLifecycle(l) = &mut e.body else {
            unreachable!()
        };
        l.phase = phase;
        e
    };
    p.submit(lifecycle(1, Phase::Opened), "test").await.unwrap();
    p.submit(lifecycle(2, Phase::InCameraStarted), "test")
        .await
        .unwrap();
    let speech = at(kind("floor.speech_started"), 3);
    assert_eq!(
        p.submit(speech.clone(), "test").await.unwrap_err().code(),
        "in_camera"
    );
    let vote = at(kind("vote.closed"), 3);
    assert_eq!(
        p.submit(vote, "test").await.unwrap_err().code(),
        "in_camera"
    );
    // A restarted publisher still knows the sitting is in camera.
    drop(p);
    let p = pipeline(&server).await;
    assert_eq!(
        p.submit(speech, "test").await.unwrap_err().code(),
        "in_camera"
    );
    p.submit(lifecycle(3, Phase::InCameraEnded), "test")
        .await
        .unwrap();
    p.submit(at(kind("floor.speech_started"), 4), "test")
        .await
        .unwrap();
    assert_eq!(stream_len(&server.url(), STREAM).await, 4);
}

#[tokio::test]
async fn a_full_disk_is_refused_clearly_and_nothing_is_half_written() {
    // JetStream may use 64 KiB of "disk": it fills after a few hundred events.
    let server = NatsServer::start_with_max_file_store(64 * 1024);
    let unlimited = StreamSettings {
        max_bytes: -1,
        ..settings()
    };
    let log = JetStreamLog::open(&server.url(), &unlimited)
        .await
        .expect("stream ready");
    let retry = RetryPolicy {
        give_up_after: Duration::from_secs(5),
        ..RetryPolicy::default()
    };
    let p = Pipeline::new(log, retry, 100, Arc::new(Metrics::default()));
    let events = interleaved_bills(500, 4); // far more than fits
    let mut stored = 0u64;
    let mut refusal = None;
    for e in events {
        match p.submit(e, "test").await {
            Ok(Outcome::Stored { .. }) => stored += 1,
            Ok(Outcome::Duplicate) => panic!("no duplicates were sent"),
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let refusal = refusal.expect("the full disk refuses a write");
    assert_eq!(refusal.code(), "refused", "{refusal}");
    assert!(!refusal.is_transient(), "retrying cannot help: {refusal}");
    assert!(stored > 0);
    // Every accepted event is stored whole and readable; the refused one is not there.
    let in_stream = read_stream(&server.url(), STREAM).await;
    assert_eq!(in_stream.len() as u64, stored);
}

#[tokio::test]
async fn the_rules_that_need_a_bills_history_hold_across_a_restart() {
    // s.138: a withheld bill may be reaffirmed only 180 days after it was withheld.
    let server = NatsServer::start();
    let p = pipeline(&server).await;
    let path = [
        Proposed,
        HouseR1,
        HouseCommittee,
        HouseR2,
        HouseR3,
        SenateR1,
        Withheld,
    ];
    for e in bill_history("b-2566-0200", &path) {
        assert!(matches!(
            p.submit(e, "test").await,
            Ok(Outcome::Stored { .. })
        ));
    }
    // The publisher restarts: the history comes back from JetStream.
    drop(p);
    let p = pipeline(&server).await;
    let early = bill_event("b-2566-0200", 8, Some(Withheld), HouseReaffirm);
    let err = p.submit(early.clone(), "test").await.unwrap_err();
    assert_eq!(err.code(), "wait_not_over", "{err}");
    assert_eq!(err.field().as_deref(), Some("data.to_stage"));
    assert_eq!(stream_len(&server.url(), STREAM).await, path.len() as u64);
    let mut later = early;
    later.occurred_at += chrono::Duration::days(180);
    assert!(matches!(
        p.submit(later, "test").await,
        Ok(Outcome::Stored { .. })
    ));
}

#[tokio::test]
async fn a_vote_result_that_contradicts_its_threshold_is_refused() {
    // The joint sitting of 10 Sep 2021: 472 ayes pass "more than half of the
    // 730 members in office, with at least 1/3 of the senators".
    let server = NatsServer::start();
    let p = pipeline(&server).await;
    let sitting: Vec<_> = one_of_each_kind()
        .into_iter()
        .filter(|e| e.aggregate_id == "joint-2564-1-10")
        .collect();
    let result_at = sitting
        .iter()
        .position(|e| e.body.kind() == "vote.result")
        .unwrap();
    for e in &sitting[..result_at] {
        assert!(matches!(
            p.submit(e.clone(), "test").await,
            Ok(Outcome::Stored { .. })
        ));
    }
    let mut wrong = sitting[result_at].clone();
    let sapha_proto::Body::VoteResult(r) = &mut wrong.body else {
        unreachable!()
    };
    r.result = sapha_proto::event::VoteOutcome::Failed;
    let err = p.submit(wrong, "test").await.unwrap_err();
    assert_eq!(err.code(), "result_contradicts_threshold", "{err}");
    assert_eq!(err.field().as_deref(), Some("data.result"));
    assert!(matches!(
        p.submit(sitting[result_at].clone(), "test").await,
        Ok(Outcome::Stored { .. })
    ));
}
