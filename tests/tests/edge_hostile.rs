//! Connections that hold a descriptor without sending a request, against
//! `sapha hub` as a child process at a low descriptor limit (`ulimit -n 256`):
//! silent sockets and HTTP/2-preface-only sockets are cut, capped per IP and
//! in total, and health checks and WebSockets from others are still served.
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
    assert!(
        peak < NOFILE - 32,
        "the hub held {peak} descriptors; its budget is {} under a limit of {NOFILE}",
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
