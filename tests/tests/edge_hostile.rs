//! Connections that hold a descriptor without sending a request, against
//! `sapha hub` as a child process at a low descriptor limit (`ulimit -n 256`):
//! silent sockets, HTTP/2-preface-only sockets and sockets idle on keep-alive
//! after one request are cut, capped per IP and in total, displaced at the
//! descriptor budget, and health checks and WebSockets are still served; and
//! a reconnect storm of 5,000 WebSocket clients from one address all connect.
//! Loops are bounded in count and time; no timing is asserted.

mod hub_support;
mod security_support;

use hub_support::*;
use sapha_tests::{free_port, NatsServer};
use security_support::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The descriptor limit the hub runs under.
const NOFILE: usize = 256;
/// Silent connections the attacker opens: more than the hub has descriptors.
const SILENT: usize = 300;
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn connect_from(ip: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((ip, 0).into())?;
    socket.connect(to).await
}

/// `GET path` from a loopback source address; the status line, or `None` when
/// no answer came in time.
async fn get_from(ip: [u8; 4], to: SocketAddr, path: &str) -> Option<String> {
    let exchange = async {
        let mut tcp = connect_from(ip, to).await.ok()?;
        let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tcp.write_all(head.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        text.lines().next().map(str::to_owned)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// Whether the hub closed `tcp` (EOF or reset) within `patience`; what it
/// sends first (an HTTP/2 SETTINGS frame) is read and skipped.
async fn closed_within(tcp: &mut TcpStream, patience: Duration) -> bool {
    let mut buf = [0u8; 256];
    let drained = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    };
    tokio::time::timeout(patience, drained).await.is_ok()
}

/// `sapha hub` as a child process under `ulimit -n nofile` (set in a shell
/// that then becomes the hub, as an operator would run it), with `--set`
/// overrides; returns once it is ready.
async fn start_hub(nats: &NatsServer, nofile: usize, set: &[&str]) -> (Child, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(sapha_tests::sapha_bin())
        .args([
            "hub",
            "--nats-url",
            &nats.url(),
            "--listen",
            &addr.to_string(),
        ]);
    for s in set {
        command.args(["--set", s]);
    }
    let child = Child(
        command
            .env("RUST_LOG", "error")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sapha hub starts"),
    );
    let ready = sapha_tests::wait_until(WAIT, || async move {
        get_from([127, 0, 0, 9], addr, "/readyz")
            .await
            .is_some_and(|s| s.contains(" 200 "))
    })
    .await;
    assert!(ready, "sapha hub became ready");
    (child, addr)
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_cut_and_capped_and_others_are_still_served() {
    raise_nofile();
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    let (child, addr) = start_hub(
        &nats,
        NOFILE,
        &[
            "limits.header_read_timeout_ms=2000",
            "limits.max_pending_connections=100",
            "limits.max_pending_connections_per_ip=40",
            "limits.fd_reserve=32",
        ],
    )
    .await;
    let pid = child.0.id();

    // The attack: more silent sockets from one IP than the hub has
    // descriptors, and some that send only the HTTP/2 preface.
    let mut silent = Vec::new();
    for _ in 0..SILENT {
        silent.push(connect_from([127, 0, 0, 1], addr).await.unwrap());
    }
    for _ in 0..20 {
        let mut tcp = connect_from([127, 0, 0, 2], addr).await.unwrap();
        tcp.write_all(H2_PREFACE).await.unwrap();
        silent.push(tcp);
    }
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(open_descriptors(pid));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Others are served meanwhile: a health check from another address, one
    // from the attacker's own address (it displaces the attacker's oldest
    // silent socket), and a WebSocket that gets its welcome.
    assert_eq!(
        get_from([127, 0, 0, 3], addr, "/healthz").await.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "a health check from another address is answered during the attack"
    );
    assert_eq!(
        get_from([127, 0, 0, 1], addr, "/healthz").await.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "a health check from the attacker's own address is answered too"
    );
    let url = format!("ws://{addr}/v1/ws?topics=bill.%3E");
    let mut client = Client::connect(&url).await;
    assert_eq!(client.welcome().await["type"], "welcome");

    // Every silent socket is closed by the hub: the surplus at once, the rest
    // at the request deadline.
    let mut still_open = 0;
    for tcp in &mut silent {
        if !closed_within(tcp, Duration::from_secs(10)).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "silent connections left open by the hub");
    // The burst is younger than `limits.pending_min_age_ms`, so the per-IP
    // cap does not close it yet: the descriptor budget bounds it (new
    // connections run ahead of the closes by at most half the reserve), and
    // the hub never runs out of descriptors.
    assert!(
        peak < NOFILE,
        "the hub held {peak} descriptors under a limit of {NOFILE} (budget {})",
        NOFILE - 32
    );
    let metrics = get_metrics(addr).await;
    for name in [
        "sapha_hub_request_deadline_closes_total",
        "sapha_hub_pending_evictions_total",
    ] {
        assert!(
            metric_value(&metrics, name) > 0,
            "{name} counts the cut connections"
        );
    }
    println!(
        "FIGURES edge: {SILENT} silent + 20 h2-preface sockets at ulimit -n {NOFILE}: \
         peak hub descriptors {peak}"
    );
}

/// A descriptor budget smaller than the connections that want in: the hub
/// closes the surplus at accept (counted), and keeps serving what it holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_descriptor_budget_new_connections_are_closed_at_once() {
    raise_nofile();
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    // Room for about 28 connections: 128 - 100.
    let (_hub, addr) = start_hub(&nats, 128, &["limits.fd_reserve=100"]).await;
    // 40 WebSockets from 40 addresses: the budget admits some, closes the rest.
    let mut admitted = Vec::new();
    let mut refused = 0;
    for i in 0..40u8 {
        let Ok(tcp) = connect_from([127, 0, 1, i + 1], addr).await else {
            refused += 1;
            continue;
        };
        let url = format!("ws://{addr}/v1/ws?topics=bill.%3E");
        let handshake = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(
                url.as_str(),
                tokio_tungstenite::MaybeTlsStream::Plain(tcp),
            ),
        )
        .await;
        match handshake {
            Ok(Ok((ws, _))) => admitted.push(Client { ws }),
            _ => refused += 1,
        }
    }
    assert!(
        !admitted.is_empty() && refused > 0,
        "admitted {}, refused {refused}",
        admitted.len()
    );
    for c in &mut admitted {
        assert_eq!(
            c.welcome().await["type"],
            "welcome",
            "admitted clients are served"
        );
    }
    drop(admitted);
    let counted = sapha_tests::wait_until(WAIT, || async move {
        metric_value(
            &get_metrics(addr).await,
            "sapha_hub_refused_no_headroom_total",
        ) > 0
    })
    .await;
    assert!(counted, "refusals at accept are counted");
}

async fn get_metrics(addr: SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric_value(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A keep-alive connection from `ip` that has made one request and been
/// answered, now silent; `None` when the hub closed it instead of answering.
async fn answered_then_idle(ip: [u8; 4], to: SocketAddr) -> Option<TcpStream> {
    let exchange = async {
        let mut tcp = connect_from(ip, to).await.ok()?;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while !answer.ends_with(b"ok\n") {
            let n = tcp.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        Some(tcp)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

/// The sibling of a silent socket: one that sends a single cheap request and
/// then idles on keep-alive. Between requests it holds a descriptor without a
/// request just the same, so it counts against the same per-IP cap; here the
/// request deadline (30 s) is too long to rescue anyone within the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_count_against_the_per_ip_cap() {
    raise_nofile();
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    let (child, addr) = start_hub(
        &nats,
        NOFILE,
        &[
            "limits.header_read_timeout_ms=30000",
            "limits.max_pending_connections=100",
            "limits.max_pending_connections_per_ip=40",
            "limits.fd_reserve=32",
        ],
    )
    .await;
    let pid = child.0.id();
    // More answered-then-idle connections from one IP than the hub has descriptors.
    let mut idle = Vec::new();
    for _ in 0..SILENT {
        idle.extend(answered_then_idle([127, 0, 0, 1], addr).await);
    }
    assert_eq!(
        get_from([127, 0, 0, 3], addr, "/healthz").await.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "a health check from another address is answered (each of the {} idle \
         connections was answered; the hub holds {} descriptors)",
        idle.len(),
        open_descriptors(pid)
    );
    // The hub holds at most the per-IP cap of them (plus its own few dozen).
    let bounded =
        sapha_tests::wait_until(WAIT, || async move { open_descriptors(pid) < 40 + 40 }).await;
    assert!(
        bounded,
        "the hub holds {} descriptors for {} idle keep-alive connections from one IP",
        open_descriptors(pid),
        idle.len()
    );
    assert!(
        metric_value(
            &get_metrics(addr).await,
            "sapha_hub_pending_evictions_total"
        ) > 0
    );
}

/// Silent sockets from many addresses, each under the per-IP cap, that fill
/// the descriptor budget before the total pending cap: a new connection then
/// takes the place of the oldest pre-request one instead of being refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_descriptor_budget_a_new_connection_displaces_the_oldest_silent_one() {
    raise_nofile();
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    let (child, addr) = start_hub(
        &nats,
        NOFILE,
        &[
            "limits.header_read_timeout_ms=30000",
            "limits.max_pending_connections=1024",
            "limits.max_pending_connections_per_ip=40",
            "limits.fd_reserve=32",
        ],
    )
    .await;
    let pid = child.0.id();
    // 7 addresses x 40 silent sockets: 280, above the budget of 224.
    let mut silent = Vec::new();
    for host in 1..=7u8 {
        for _ in 0..40 {
            silent.extend(connect_from([127, 0, 2, host], addr).await.ok());
        }
    }
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(open_descriptors(pid));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        get_from([127, 0, 0, 3], addr, "/healthz").await.as_deref(),
        Some("HTTP/1.1 200 OK"),
        "a health check from a new address is answered"
    );
    let url = format!("ws://{addr}/v1/ws?topics=bill.%3E");
    let mut client = Client::connect(&url).await;
    assert_eq!(client.welcome().await["type"], "welcome");
    assert!(
        peak < NOFILE,
        "the hub held {peak} descriptors under a limit of {NOFILE}"
    );
    assert!(
        metric_value(
            &get_metrics(addr).await,
            "sapha_hub_pending_evictions_total"
        ) > 0
    );
}

/// Clients in the reconnect storm (issue 21: 3,695 of 5,000 were lost).
const STORM_CLIENTS: usize = 5_000;
/// WebSocket handshakes in flight at once, all from one address.
const STORM_CONCURRENCY: usize = 200;

/// A reconnect storm from one address (a hub restart behind a carrier-grade
/// NAT, or a load generator): 5,000 WebSocket clients, 200 handshakes in
/// flight at a time, against the default pending caps (64 per IP). Every
/// client connects and gets its welcome: a connection whose request head is
/// already in the kernel buffer is not idle, and none is cut before it has
/// been pending for `limits.pending_min_age_ms`. Bounded in count and time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_from_one_address_connects_every_client() {
    use futures::StreamExt;
    raise_nofile();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the local struct we pass.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert!(
        lim.rlim_cur as usize >= 2 * STORM_CLIENTS + 1_000,
        "the storm needs ulimit -n of at least {} (this process has {}; scripts/test.sh raises it \
         to 20000)",
        2 * STORM_CLIENTS + 1_000,
        lim.rlim_cur
    );
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    // Many users behind one address: the per-IP connection limit is raised,
    // the pending caps keep their defaults.
    let (child, addr) = start_hub(
        &nats,
        4 * STORM_CLIENTS,
        &[&format!(
            "limits.max_connections_per_ip={}",
            2 * STORM_CLIENTS
        )],
    )
    .await;
    let url = format!("ws://{addr}/v1/ws?topics=bill.%3E");
    let storm = futures::stream::iter(0..STORM_CLIENTS)
        .map(|_| {
            let url = url.clone();
            async move {
                let attempt = async {
                    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut client = Client { ws };
                    let welcome = client.json().await;
                    if welcome["type"] == "welcome" {
                        Ok(client)
                    } else {
                        Err(format!("not a welcome: {welcome}"))
                    }
                };
                tokio::time::timeout(Duration::from_secs(60), attempt)
                    .await
                    .unwrap_or_else(|_| Err("no welcome within 60 s".into()))
            }
        })
        .buffer_unordered(STORM_CONCURRENCY)
        .collect::<Vec<_>>();
    let results = tokio::time::timeout(Duration::from_secs(300), storm)
        .await
        .expect("the storm ends within its bound");
    let mut failures: std::collections::BTreeMap<String, usize> = Default::default();
    let mut connected = Vec::new();
    for r in results {
        match r {
            Ok(c) => connected.push(c),
            Err(e) => *failures.entry(e).or_default() += 1,
        }
    }
    let metrics = get_metrics(addr).await;
    assert!(
        failures.is_empty(),
        "{} of {STORM_CLIENTS} clients did not connect: {failures:?}; evictions {}",
        STORM_CLIENTS - connected.len(),
        metric_value(&metrics, "sapha_hub_pending_evictions_total")
    );
    assert_eq!(connected.len(), STORM_CLIENTS);
    println!(
        "FIGURES edge storm: {STORM_CLIENTS} clients, {STORM_CONCURRENCY} in flight from one \
         address: all connected; pending evictions {}, hub descriptors {}",
        metric_value(&metrics, "sapha_hub_pending_evictions_total"),
        open_descriptors(child.0.id())
    );
}
