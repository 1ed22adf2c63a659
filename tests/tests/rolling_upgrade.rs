//! A rolling upgrade with no gap, as processes on loopback: a 3-node NATS
//! cluster with the stream at R3, 3 `sapha hub` processes and 2,000 clients
//! (Sapha's own Rust client, every hub in its list) spread over them. Events are
//! published through the publisher's pipeline the whole time while each hub in
//! turn gets SIGTERM and is replaced on the same port by a new process (ready
//! before the next one goes), and then each NATS node in turn is killed and
//! started again (the stream current on all three before the next). At the end
//! every client holds exactly what the stream holds: every event once, in order.

mod hub_support;

use futures::StreamExt;
use sapha_publisher::jetstream::{JetStreamLog, StreamSettings};
use sapha_publisher::metrics::Metrics;
use sapha_publisher::pipeline::{Pipeline, RetryPolicy};
use sapha_subscribers::{ClientBuilder, Item};
use sapha_tests::fixtures::{bill_history, read_stream, stream_settings};
use sapha_tests::{free_port, sapha_bin, wait_until, NatsCluster};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HUBS: usize = 3;
const CLIENTS: usize = 2_000;
/// Time between two published events (at most 10 a second; each also waits
/// for its R3 ack, so on a loaded 2-core box it is 1 or 2 a second), so that
/// events keep coming through every restart.
const PACE: Duration = Duration::from_millis(100);
/// How long any one step (a hub's drain, a start, the cluster catching up) may take.
const STEP: Duration = Duration::from_secs(30);
const STREAM: &str = "PARL";

/// Up to 1,000 events: 10 stage changes of each of 100 bills, bill after
/// bill, so the publisher loads each bill's history from the stream once per
/// 10 events (as ingest does for a sitting's few bills), not once per event.
fn events() -> Vec<sapha_proto::Event> {
    let path = sapha_proto::stage::rules_for(sapha_proto::stage::BillType::Act).main_path;
    (0..100)
        .flat_map(|b| bill_history(&format!("b-2566-{b:04}"), &path[..10.min(path.len())]))
        .collect()
}

/// Raises the soft descriptor limit to the hard one: 2,000 client sockets.
fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit on this process with a valid struct.
    unsafe {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 0;
        }
        if l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        }
        l.rlim_cur
    }
}

/// A `sapha hub` process; SIGKILLed on drop so a failing test leaves nothing.
struct HubProcess {
    child: Child,
    port: u16,
}

impl HubProcess {
    fn spawn(urls: &str, port: u16, log: &Path) -> HubProcess {
        let log = std::fs::File::create(log).expect("hub log file");
        let child = Command::new(sapha_bin())
            .args(["hub", "--nats-url", urls, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--set", "limits.max_connections_per_ip=5000"])
            .args(["--set", "shutdown.drain_timeout_ms=5000"])
            .args(["--set", "nats.max_backoff_ms=500"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sapha hub starts");
        HubProcess { child, port }
    }

    async fn wait_ready(&self) {
        let port = self.port;
        let ready = wait_until(STEP, || async move {
            reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "hub on {port} is not ready");
    }

    /// SIGTERM, then waits (bounded) for the drain and the exit.
    async fn terminate(mut self) {
        // SAFETY: kill(2) on a child this test started and has not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM to the hub");
        let exited = wait_until(STEP, || {
            let done = matches!(self.child.try_wait(), Ok(Some(_)));
            async move { done }
        })
        .await;
        assert!(exited, "hub on {} did not exit after SIGTERM", self.port);
        let status = self.child.wait().expect("reaped");
        assert!(
            status.success(),
            "the hub exits cleanly on SIGTERM: {status}"
        );
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn read_stream_owned(url: String) -> Vec<sapha_tests::fixtures::Stored> {
    read_stream(&url, STREAM).await
}

/// Waits (bounded) until the publisher has stored more events than now.
async fn events_stored_meanwhile(published: &AtomicUsize, what: &str) {
    let before = published.load(Ordering::Relaxed);
    let more = wait_until(STEP, || async move {
        published.load(Ordering::Relaxed) > before
    })
    .await;
    assert!(more, "no event was stored while {what}");
}

/// Waits until the stream has a leader and both other replicas are current,
/// and the restarted node `name` has been heard from since `restarted` (so a
/// "current" from before its restart does not count).
async fn cluster_current(urls: &str, name: &str, restarted: Instant) -> bool {
    let addrs: Vec<async_nats::ServerAddr> = urls.split(',').map(|u| u.parse().unwrap()).collect();
    let Ok(client) = async_nats::connect(addrs).await else {
        return false;
    };
    let js = async_nats::jetstream::new(client);
    wait_until(STEP, || {
        let js = js.clone();
        async move {
            let Ok(Ok(mut stream)) =
                tokio::time::timeout(Duration::from_secs(2), js.get_stream(STREAM)).await
            else {
                return false;
            };
            let Ok(Ok(info)) = tokio::time::timeout(Duration::from_secs(2), stream.info()).await
            else {
                return false;
            };
            let since = restarted.elapsed();
            info.cluster.as_ref().is_some_and(|c| {
                c.leader.is_some()
                    && c.replicas.len() == 2
                    && c.replicas.iter().all(|r| r.current && !r.offline)
                    && (c.leader.as_deref() == Some(name)
                        || c.replicas
                            .iter()
                            .any(|r| r.name == name && r.active < since))
            })
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_every_hub_and_nats_node_loses_and_repeats_nothing() {
    let t0 = Instant::now();
    let nofile = raise_nofile();
    assert!(
        nofile >= CLIENTS as u64 + 500,
        "ulimit -n is {nofile}: {CLIENTS} clients need more (raise the hard limit)"
    );
    let logs = tempfile::tempdir().unwrap();
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();

    // The R3 stream, created as `sapha ingest` creates it; retried while the
    // cluster elects its meta leader. The publisher and the hubs are each
    // given all three nodes (one comma-separated setting).
    let settings = StreamSettings {
        replicas: 3,
        ..stream_settings()
    };
    let deadline = tokio::time::Instant::now() + STEP;
    let log = loop {
        match JetStreamLog::open(&urls, &settings).await {
            Ok(log) => break log,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the R3 stream is not created: {e}"),
        }
    };
    println!("R3 stream created after {:?}", t0.elapsed());
    let pipeline = Arc::new(Pipeline::new(
        log,
        RetryPolicy {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            give_up_after: Duration::from_secs(60),
        },
        1000,
        Arc::new(Metrics::default()),
    ));

    let ports: Vec<u16> = (0..HUBS).map(|_| free_port()).collect();
    let mut hubs: Vec<Option<HubProcess>> = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            let log = logs.path().join(format!("hub{i}-gen0.log"));
            Some(HubProcess::spawn(&urls, port, &log))
        })
        .collect();
    for hub in hubs.iter().flatten() {
        hub.wait_ready().await;
    }
    println!("cluster and {HUBS} hubs ready after {:?}", t0.elapsed());

    // Client i lists every hub, starting with hub i % 3: about 667 on each.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<(Vec<(u64, String)>, usize)>(CLIENTS);
    let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel::<()>(CLIENTS);
    let (target_tx, target_rx) = tokio::sync::watch::channel(usize::MAX);
    for i in 0..CLIENTS {
        let urls = (0..HUBS).map(|k| format!("ws://127.0.0.1:{}", ports[(i + k) % HUBS]));
        let mut stream = ClientBuilder::new()
            .urls(urls)
            .topic("bill")
            .backoff(Duration::from_millis(50), Duration::from_millis(1000))
            .subscribe()
            .unwrap();
        let done = done_tx.clone();
        let connected = connected_tx.clone();
        let mut target = target_rx.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut connects = 0usize;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
            loop {
                if got.len() >= *target.borrow() {
                    break;
                }
                let item = tokio::select! {
                    item = tokio::time::timeout_at(deadline, stream.next()) => item,
                    _ = target.changed() => continue,
                };
                match item {
                    Ok(Some(Ok(Item::Event(d)))) => got.push((d.seq, d.event.event_id)),
                    Ok(Some(Ok(Item::Connected { .. }))) => {
                        connects += 1;
                        if connects == 1 {
                            let _ = connected.send(()).await;
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            let _ = done.send((got, connects)).await;
        });
    }
    drop(done_tx);
    for _ in 0..CLIENTS {
        tokio::time::timeout(Duration::from_secs(60), connected_rx.recv())
            .await
            .expect("every client connects")
            .expect("a client task ended before connecting");
    }
    println!("{CLIENTS} clients connected after {:?}", t0.elapsed());

    // Publishing runs through everything below, one event per PACE.
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::new(AtomicUsize::new(0));
    let publishing = {
        let (pipeline, stop, published) = (pipeline.clone(), stop.clone(), published.clone());
        tokio::spawn(async move {
            let mut sent = 0usize;
            for e in events() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let outcome = pipeline.submit(e, "test").await;
                assert!(outcome.is_ok(), "event not accepted: {outcome:?}");
                sent += 1;
                published.store(sent, Ordering::Relaxed);
                tokio::time::sleep(PACE).await;
            }
            sent
        })
    };
    // Publishing is under way before the first hub goes.
    events_stored_meanwhile(&published, "the clients connected").await;

    // Each hub in turn: SIGTERM (clients get 1001 and move to the next hub in
    // their list, resuming with `since`), a new process on the same port, ready
    // before the next one goes.
    for (i, slot) in hubs.iter_mut().enumerate() {
        let old = slot.take().expect("a running hub");
        let began = Instant::now();
        old.terminate().await;
        // At least one event is stored while this hub is away.
        events_stored_meanwhile(&published, &format!("hub {i} was down")).await;
        let log = logs.path().join(format!("hub{i}-gen1.log"));
        let new = HubProcess::spawn(&urls, ports[i], &log);
        new.wait_ready().await;
        println!("hub {i} replaced in {:?}", began.elapsed());
        *slot = Some(new);
    }
    println!("hubs rolled after {:?}", t0.elapsed());

    // Each NATS node in turn: killed, started again with its store, and the
    // stream current on all three before the next.
    for (i, node) in cluster.nodes.iter_mut().enumerate() {
        let began = Instant::now();
        node.kill();
        events_stored_meanwhile(&published, &format!("nats node {i} was down")).await;
        node.restart();
        assert!(
            cluster_current(&urls, &format!("n{i}"), began).await,
            "the stream is not current after restarting node {i}"
        );
        println!("nats node {i} restarted in {:?}", began.elapsed());
    }
    println!("nats rolled after {:?}", t0.elapsed());

    // And goes on after the last node is back, before it stops.
    events_stored_meanwhile(&published, "the cluster recovered").await;
    stop.store(true, Ordering::Relaxed);
    let sent = tokio::time::timeout(STEP, publishing)
        .await
        .expect("publishing stops")
        .unwrap();
    // Reading the stream right after the last node's restart can meet a
    // consumer whose leader is still being placed (a fetch error, which
    // `read_stream` panics on): read again, 3 times at most.
    let url = cluster.nodes[0].url();
    let mut attempt = 0;
    let stored: Vec<(u64, String)> = loop {
        attempt += 1;
        match tokio::spawn(read_stream_owned(url.clone())).await {
            Ok(stored) => break stored,
            Err(e) if attempt < 3 => {
                eprintln!("reading the stream failed ({e}); again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("cannot read the stream: {e}"),
        }
    }
    .into_iter()
    .map(|s| (s.stream_seq, s.event.event_id))
    .collect();
    assert_eq!(
        stored.len(),
        sent,
        "the stream holds each published event once"
    );
    println!(
        "{sent} events published and stored after {:?}",
        t0.elapsed()
    );

    target_tx.send(stored.len()).unwrap();
    let mut reconnects = 0;
    for n in 0..CLIENTS {
        let (got, connects) = tokio::time::timeout(Duration::from_secs(120), done_rx.recv())
            .await
            .expect("every client finishes")
            .expect("a client task ended");
        assert_eq!(
            got.len(),
            stored.len(),
            "client result {n}: {} events of {}",
            got.len(),
            stored.len()
        );
        assert_eq!(
            got, stored,
            "a client missed, repeated or reordered an event"
        );
        reconnects += connects - 1;
    }
    println!(
        "{CLIENTS} clients x {} events each, exactly the stream; {reconnects} reconnects; {:?} in all",
        stored.len(),
        t0.elapsed()
    );
    assert!(reconnects >= CLIENTS, "every client moved at least once");
}
