//! Unit tests of the hub's core over the in-memory bus, on paused time: the
//! resume rule at every boundary, falling behind and coming back, in-camera
//! withholding, the stall close, and a source that keeps failing. They drive
//! the real consumer loop, fan-out and replays; only NATS and the sockets are
//! left out (the socket side is `ws.rs`'s and `sse.rs`'s).

use super::*;
use crate::metrics::DisconnectReason;
use crate::protocol::{Format, Frame, Id};
use futures::StreamExt;
use sapha_bus::MemoryBus;
use sapha_log::{EventLog, EventSource, SourceMessage, SourceStream, StreamBounds};
use sapha_proto::event::{Chamber, Phase, SittingRef};
use sapha_proto::{Body, Event};
use std::sync::atomic::{AtomicU32, AtomicU64};
use tokio::sync::{mpsc, watch};

/// A source with nothing in it: for tests that need a hub, not events.
pub(crate) struct Silent;

impl EventSource for Silent {
    async fn bounds(&self) -> Result<StreamBounds, SourceError> {
        Ok(StreamBounds::default())
    }
    async fn read_from(&self, _start: u64) -> Result<SourceStream, SourceError> {
        Ok(futures::stream::pending().boxed())
    }
}

/// A panic while the core lock is held poisons it; the hub goes on.
#[test]
fn a_poisoned_core_lock_does_not_stop_the_hub() {
    let hub = Arc::new(Hub::new(Config::default(), Box::new(Silent)));
    let h = hub.clone();
    let panicked = std::thread::spawn(move || {
        let _core = h.core();
        panic!("a bug while holding the core lock");
    })
    .join();
    assert!(panicked.is_err());
    assert!(hub.core.is_poisoned());
    assert_eq!(hub.last_seq(), 0);
    let (conn, _rx) = hub.register(crate::protocol::Format::Json, false);
    assert_eq!(hub.core().conns.len(), 1, "{}", conn.id);
}

// ------------------------------------------------------------------ the rig

/// Most turns a test waits for the hub to reach a state (each turn sleeps 1 ms
/// of paused time).
const TURNS: u32 = 100_000;

fn template(pick: impl Fn(&Body) -> bool) -> Event {
    sapha_proto::examples::one_of_each_kind()
        .into_iter()
        .find(|e| pick(&e.body))
        .expect("an example of the kind")
}

/// Unique per test process, so that the bus never deduplicates two events.
fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A stage change of `bill` (topic `bill.<bill>.stage`).
fn bill_stage(bill: &str) -> Event {
    let mut e = template(|b| matches!(b, Body::BillStageChanged(_)));
    let n = unique();
    if let Body::BillStageChanged(b) = &mut e.body {
        b.bill_id = bill.into();
    }
    e.aggregate_id = bill.into();
    e.seq = n;
    e.event_id = format!("e-{bill}-{n}");
    e
}

const SITTING: &str = "senate-2566-2-28";

fn sitting_ref() -> SittingRef {
    SittingRef {
        chamber: Chamber::Senate,
        sitting_id: SITTING.into(),
    }
}

/// A lifecycle event of [`SITTING`] (topic `sitting.senate.<id>.lifecycle`).
fn lifecycle(phase: Phase) -> Event {
    let mut e = template(|b| matches!(b, Body::SittingLifecycle(_)));
    let n = unique();
    if let Body::SittingLifecycle(l) = &mut e.body {
        l.sitting = sitting_ref();
        l.phase = phase;
        l.outcome = None;
    }
    e.aggregate_id = SITTING.into();
    e.seq = n;
    e.event_id = format!("e-{SITTING}-{n}");
    e
}

/// A vote in [`SITTING`] on `bill` (topic `sitting.senate.<id>.vote`,
/// secondary `bill.<bill>.vote`).
fn vote(bill: &str) -> Event {
    let mut e = template(|b| matches!(b, Body::VoteResult(_)));
    let n = unique();
    if let Body::VoteResult(v) = &mut e.body {
        v.sitting = sitting_ref();
        v.bill_id = Some(bill.into());
    }
    e.aggregate_id = SITTING.into();
    e.seq = n;
    e.event_id = format!("e-{SITTING}-vote-{n}");
    e
}

/// A hub over a source, with its consumer loop running.
struct Rig {
    hub: Arc<Hub>,
}

impl Rig {
    async fn start(source: impl EventSource, tune: impl FnOnce(&mut Config)) -> Rig {
        let mut config = Config::default();
        tune(&mut config);
        let hub = Arc::new(Hub::new(config, Box::new(source)));
        tokio::spawn(crate::consumer::run(hub.clone()));
        let rig = Rig { hub };
        let mut started = rig.hub.started.subscribe();
        tokio::time::timeout(Duration::from_secs(60), started.wait_for(|s| *s))
            .await
            .expect("the fan-out starts")
            .expect("the hub lives");
        rig
    }

    /// Waits until the fan-out has handled `seq`.
    async fn fanned_out(&self, seq: u64) {
        for _ in 0..TURNS {
            if self.hub.last_seq() >= seq {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("the fan-out never reached {seq}");
    }

    /// A connection subscribed to `topics`, resuming after `since` if given.
    fn client(&self, topics: &[&str], since: Option<u64>) -> Client {
        let (conn, rx) = self.hub.register(Format::Json, false);
        let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        let id = Id::string("sub");
        match self.hub.subscribe(&conn, &id, topics, since) {
            Ok(Subscribed::Ack(frame)) => self.hub.send_frame(&conn, frame),
            Ok(Subscribed::CatchUp { topics, since }) => {
                let (hub, conn) = (self.hub.clone(), conn.clone());
                tokio::spawn(async move { hub.catch_up(conn, id, topics, since, None).await });
            }
            Err(frame) => panic!("subscribe refused: {frame:?}"),
        }
        Client { conn, rx }
    }
}

async fn publish(bus: &MemoryBus, e: &Event) -> u64 {
    let appended = bus.append(e).await.expect("the bus takes it");
    assert!(!appended.duplicate);
    appended.stream_seq
}

/// `n` stage changes, alternating between bills b-1 and b-2; the sequences of b-1's.
async fn publish_n(bus: &MemoryBus, n: usize) -> Vec<u64> {
    let mut b1 = Vec::new();
    for i in 0..n {
        let bill = if i % 2 == 0 { "b-1" } else { "b-2" };
        let seq = publish(bus, &bill_stage(bill)).await;
        if bill == "b-1" {
            b1.push(seq);
        }
    }
    b1
}

/// What a client got, in order.
#[derive(Debug, PartialEq)]
enum Got {
    Event(u64),
    Ack { recovered: Option<bool> },
    Live,
}

/// A connection as its writer sees it: the queue, drained like the writer does.
struct Client {
    conn: Arc<Conn>,
    rx: mpsc::Receiver<Out>,
}

impl Client {
    /// The next frame, as the writer would take it (telling the hub it drained).
    async fn next(&mut self) -> Got {
        let out = tokio::time::timeout(Duration::from_secs(600), self.rx.recv())
            .await
            .expect("a frame within 10 minutes of paused time")
            .expect("the queue stays open while registered");
        self.conn.drained();
        match out {
            Out::Event(p) => Got::Event(p.seq),
            Out::Frame(f) => match *f {
                Frame::Ack { recovered, .. } => Got::Ack { recovered },
                Frame::Live { .. } => Got::Live,
                other => panic!("unexpected frame {other:?}"),
            },
        }
    }

    /// Frames until `n` events have come; the events' sequences and the other frames.
    async fn events(&mut self, n: usize) -> (Vec<u64>, Vec<Got>) {
        let (mut seqs, mut other) = (Vec::new(), Vec::new());
        while seqs.len() < n {
            match self.next().await {
                Got::Event(seq) => seqs.push(seq),
                f => other.push(f),
            }
        }
        (seqs, other)
    }

    /// Nothing more is queued now.
    fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    fn is_live(&self) -> bool {
        self.conn.subs.lock().unwrap().live
    }
}

// ------------------------------------------------------------------ resume

/// One resume after `since` on a hub with a ring of `ring` events over a
/// stream of 40 (b-1 at the odd sequences), with 20 more published while it
/// catches up: exactly the b-1 events after `since` (or all of them if the
/// position is not recovered), in order, one `live` switch, then live ones.
async fn resume_case(ring: usize, since: u64, recovered: bool) {
    let bus = MemoryBus::default();
    let b1 = publish_n(&bus, 40).await;
    let rig = Rig::start(bus.clone(), |c| c.history.cache_events = ring).await;
    // The ring fills only from the live fan-out: these fill it.
    let more = publish_n(&bus, 40).await;
    rig.fanned_out(80).await;
    let mut client = rig.client(&["bill.b-1.>"], Some(since));
    // Published while the client catches up.
    let during = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for _ in 0..10 {
                seqs.extend(publish_n(&bus, 2).await);
                tokio::task::yield_now().await;
            }
            seqs
        })
    };
    let first = client.next().await;
    assert_eq!(
        first,
        Got::Ack {
            recovered: Some(recovered)
        },
        "since={since}"
    );
    let during = during.await.unwrap();
    let from = if recovered { since } else { 0 };
    let expected: Vec<u64> = b1
        .iter()
        .chain(&more)
        .chain(&during)
        .copied()
        .filter(|s| *s > from)
        .collect();
    // Until every event and the switch to live have come (the switch may
    // come after the last of them, if the replay took them all).
    let (mut got, mut other) = (Vec::new(), Vec::new());
    while got.len() < expected.len() || !other.contains(&Got::Live) {
        match client.next().await {
            Got::Event(seq) => got.push(seq),
            f => other.push(f),
        }
    }
    assert_eq!(
        got, expected,
        "since={since}: no gap, no duplicate, in order"
    );
    assert_eq!(other, vec![Got::Live], "since={since}: one switch to live");
    // Then live, exactly once.
    let after = publish_n(&bus, 4).await;
    let (got, other) = client.events(after.len()).await;
    assert_eq!((got, other), (after, vec![]), "since={since}: live after");
    rig.fanned_out(104).await;
    assert!(client.is_empty(), "since={since}: nothing twice");
    assert!(client.is_live());
}

/// Sequences 1..=80 are stored; the ring holds the last 16 (65..=80).
#[tokio::test(start_paused = true)]
async fn resume_at_the_ring_start_is_served_from_the_ring() {
    // 65 is the ring's first: the next event after 64 is in memory.
    resume_case(16, 64, true).await;
}

#[tokio::test(start_paused = true)]
async fn resume_just_before_the_ring_start_reads_the_source() {
    resume_case(16, 63, true).await;
}

#[tokio::test(start_paused = true)]
async fn resume_at_the_ring_end_goes_live_at_once() {
    resume_case(16, 80, true).await;
}

#[tokio::test(start_paused = true)]
async fn resume_from_the_stream_start_replays_everything() {
    resume_case(16, 0, true).await;
}

#[tokio::test(start_paused = true)]
async fn resume_from_past_the_end_is_not_recovered_and_starts_at_the_first() {
    resume_case(16, 500, false).await;
    resume_case(16, u64::MAX, false).await;
}

#[tokio::test(start_paused = true)]
async fn resume_without_a_ring_reads_the_source() {
    resume_case(0, 30, true).await;
}

// ------------------------------------------------------- behind, then live

/// A client that stops reading while events flow is taken out of the index
/// and fed from the ring; once it reads again it gets every event exactly
/// once, in order, and is live again.
#[tokio::test(start_paused = true)]
async fn a_client_that_falls_behind_catches_up_and_returns_to_live() {
    let bus = MemoryBus::default();
    let rig = Rig::start(bus.clone(), |c| {
        c.limits.queue_frames = 32; // 16 for events, 16 kept for control frames
        c.history.cache_events = 1_000;
    })
    .await;
    let mut client = rig.client(&["bill.b-1.>"], None);
    assert_eq!(client.next().await, Got::Ack { recovered: None });
    let b1 = publish_n(&bus, 200).await;
    rig.fanned_out(200).await;
    assert!(!client.is_live(), "its queue filled: it is catching up");
    let (got, other) = client.events(b1.len()).await;
    assert_eq!(got, b1, "every event once, in order");
    assert_eq!(other, vec![], "no live frame for a lagged client");
    let after = publish_n(&bus, 10).await;
    let (got, _) = client.events(after.len()).await;
    assert_eq!(got, after);
    assert!(client.is_live(), "live again");
    assert_eq!(client.conn.reason(), None);
}

/// A client that falls behind the ring is closed as a slow consumer, and
/// what it got before has no gap.
#[tokio::test(start_paused = true)]
async fn a_client_that_falls_behind_the_ring_is_closed_as_slow() {
    let bus = MemoryBus::default();
    let rig = Rig::start(bus.clone(), |c| {
        c.limits.queue_frames = 32;
        c.history.cache_events = 8;
    })
    .await;
    let mut client = rig.client(&["bill.b-1.>"], None);
    assert_eq!(client.next().await, Got::Ack { recovered: None });
    let b1 = publish_n(&bus, 200).await;
    rig.fanned_out(200).await;
    let mut got = Vec::new();
    for _ in 0..b1.len() {
        if client.conn.is_killed() && client.is_empty() {
            break;
        }
        match client.next().await {
            Got::Event(seq) => got.push(seq),
            f => panic!("unexpected {f:?}"),
        }
    }
    assert_eq!(client.conn.reason(), Some(DisconnectReason::SlowConsumer));
    assert!(got.len() < b1.len());
    assert_eq!(got, b1[..got.len()], "a prefix, without gap");
}

// ------------------------------------------------------------------ stall

/// A resuming client that takes nothing is closed after the stall timeout,
/// not before.
#[tokio::test(start_paused = true)]
async fn a_client_that_takes_nothing_is_closed_after_the_stall_timeout() {
    let bus = MemoryBus::default();
    publish_n(&bus, 100).await;
    let rig = Rig::start(bus.clone(), |c| {
        c.limits.queue_frames = 32;
        c.limits.stall_timeout_ms = 5_000;
    })
    .await;
    let client = rig.client(&[">"], Some(0));
    let began = tokio::time::Instant::now();
    // The replay fills the queue, then waits for room that never comes.
    for _ in 0..TURNS {
        if client.conn.is_killed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(client.conn.reason(), Some(DisconnectReason::SlowConsumer));
    // Paused time: the clock moved only by the test's sleeps and the timers.
    assert!(
        began.elapsed() >= Duration::from_millis(5_000),
        "closed after {:?}, before the stall timeout",
        began.elapsed()
    );
}

// ------------------------------------------------------------ in camera

/// Content of a sitting in camera is never delivered: not live, not replayed
/// from the ring, not replayed from the source, not on a bill's secondary
/// topic, and not by a hub that starts while the sitting is in camera.
#[tokio::test(start_paused = true)]
async fn in_camera_content_is_withheld_live_and_on_every_replay() {
    let bus = MemoryBus::default();
    let opened = publish(&bus, &lifecycle(Phase::Opened)).await;
    let v1 = publish(&bus, &vote("b-9")).await;
    let started = publish(&bus, &lifecycle(Phase::InCameraStarted)).await;
    // This hub starts while the sitting is in camera, with no ring: it learns
    // the state from the stored lifecycle events.
    let rig = Rig::start(bus.clone(), |c| c.history.cache_events = 0).await;
    let ringed = Rig::start(bus.clone(), |c| c.history.cache_events = 1_000).await;
    let mut live = rig.client(&["sitting.>"], None);
    let mut live_bill = ringed.client(&["bill.b-9.>"], None);
    assert_eq!(live.next().await, Got::Ack { recovered: None });
    assert_eq!(live_bill.next().await, Got::Ack { recovered: None });
    let _v2 = publish(&bus, &vote("b-9")).await;
    let _v3 = publish(&bus, &vote("b-9")).await;
    let ended = publish(&bus, &lifecycle(Phase::InCameraEnded)).await;
    let v4 = publish(&bus, &vote("b-9")).await;
    rig.fanned_out(v4).await;
    ringed.fanned_out(v4).await;

    let whole = vec![opened, v1, started, ended, v4];
    assert_eq!(live.events(2).await.0, vec![ended, v4], "live");
    assert_eq!(live_bill.events(1).await.0, vec![v4], "live, secondary");
    // From the source (no ring), and from the ring.
    let mut from_source = rig.client(&["sitting.>"], Some(0));
    let mut from_ring = ringed.client(&["sitting.>"], Some(started));
    assert_eq!(
        from_source.events(5).await.0,
        whole,
        "replayed from the source"
    );
    assert_eq!(
        from_ring.events(2).await.0,
        vec![ended, v4],
        "from the ring"
    );
    let mut bill = rig.client(&["bill.b-9.>"], Some(0));
    assert_eq!(bill.events(2).await.0, vec![v1, v4], "secondary topic");
    for c in [
        &mut live,
        &mut live_bill,
        &mut from_source,
        &mut from_ring,
        &mut bill,
    ] {
        while let Ok(out) = c.rx.try_recv() {
            assert!(!matches!(out, Out::Event(_)), "nothing else: {out:?}");
        }
    }
}

// ------------------------------------------------------- a failing source

/// The bus, with reads that can be made to fail: every reader open at
/// [`Flaky::break_readers`] breaks, and `failures` next opens fail.
#[derive(Clone)]
struct Flaky {
    bus: MemoryBus,
    /// Bumped to break every open reader.
    generation: Arc<watch::Sender<u64>>,
    /// Opens that fail before one succeeds (`u32::MAX`: never succeeds).
    failures: Arc<AtomicU32>,
    /// Opens attempted, by where they start: `[from 1, later]`.
    opens: Arc<[AtomicU32; 2]>,
}

impl Flaky {
    fn new(bus: MemoryBus) -> Flaky {
        Flaky {
            bus,
            generation: Arc::new(watch::channel(0).0),
            failures: Arc::default(),
            opens: Arc::default(),
        }
    }

    fn break_readers(&self, failures: u32) {
        self.failures.store(failures, Ordering::Relaxed);
        self.generation.send_modify(|g| *g += 1);
    }
}

fn unavailable() -> SourceError {
    SourceError::Unavailable("a test source that fails".into())
}

impl EventSource for Flaky {
    async fn bounds(&self) -> Result<StreamBounds, SourceError> {
        EventSource::bounds(&self.bus).await
    }

    async fn read_from(&self, start: u64) -> Result<SourceStream, SourceError> {
        self.opens[usize::from(start > 1)].fetch_add(1, Ordering::Relaxed);
        let failing = self
            .failures
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| match n {
                0 => None,
                u32::MAX => Some(u32::MAX),
                n => Some(n - 1),
            })
            .is_ok();
        if failing {
            return Err(unavailable());
        }
        let mut generation = self.generation.subscribe();
        let broken = async move {
            let _ = generation.changed().await;
        };
        let stream = EventSource::read_from(&self.bus, start)
            .await?
            .take_until(broken)
            .chain(futures::stream::once(async { Err(unavailable()) }));
        Ok(stream.boxed())
    }

    async fn lifecycle_until(&self, _until: u64) -> Result<Vec<SourceMessage>, SourceError> {
        Ok(Vec::new())
    }
}

/// The live reader breaks and the next opens fail: the consumer reopens from
/// where it was, and a live client gets every event once, in order.
#[tokio::test(start_paused = true)]
async fn the_consumer_reopens_after_failures_without_gap_or_duplicate() {
    let bus = MemoryBus::default();
    let source = Flaky::new(bus.clone());
    let rig = Rig::start(source.clone(), |c| c.nats.max_backoff_ms = 1_000).await;
    let mut client = rig.client(&["bill.b-1.>"], None);
    assert_eq!(client.next().await, Got::Ack { recovered: None });
    let mut b1 = publish_n(&bus, 20).await;
    rig.fanned_out(20).await;
    source.break_readers(5);
    b1.extend(publish_n(&bus, 20).await);
    rig.fanned_out(40).await;
    assert_eq!(client.events(b1.len()).await.0, b1);
    assert!(client.is_empty());
    assert_eq!(source.failures.load(Ordering::Relaxed), 0, "it retried");
    // Reopened from 21 on: five failed opens, then one that worked.
    assert_eq!(source.opens[1].load(Ordering::Relaxed), 6);
}

/// A resume whose reads from the source keep failing gives up after a bounded
/// number of attempts and closes the connection as going away (1001), so the
/// client resumes elsewhere; the hub's live clients are not affected.
#[tokio::test(start_paused = true)]
async fn a_resume_from_a_source_that_keeps_failing_gives_up_and_closes() {
    let bus = MemoryBus::default();
    publish_n(&bus, 40).await;
    let source = Flaky::new(bus.clone());
    let rig = Rig::start(source.clone(), |c| c.history.cache_events = 0).await;
    let mut live = rig.client(&["bill.b-1.>"], None);
    assert_eq!(live.next().await, Got::Ack { recovered: None });
    // Every read from now on fails; the consumer's own reader stays open.
    source.failures.store(u32::MAX, Ordering::Relaxed);
    let opens_before = source.opens[0].load(Ordering::Relaxed);
    let mut resumed = rig.client(&["bill.b-1.>"], Some(0));
    assert_eq!(
        resumed.next().await,
        Got::Ack {
            recovered: Some(true)
        }
    );
    for _ in 0..TURNS {
        if resumed.conn.is_killed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(resumed.conn.reason(), Some(DisconnectReason::Shutdown));
    assert!(resumed.is_empty(), "no event, no live frame");
    let attempts = source.opens[0].load(Ordering::Relaxed) - opens_before;
    assert_eq!(
        attempts,
        super::replay::REPLAY_ATTEMPTS + 1,
        "bounded attempts"
    );
    // The live client still gets what comes.
    let after = publish_n(&bus, 4).await;
    assert_eq!(live.events(after.len()).await.0, after);
}
