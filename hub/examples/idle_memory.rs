//! Measures the hub's resident memory per idle WebSocket connection.
//!
//! `cargo run --release -p sapha-hub --example idle_memory -- 5000`
//!
//! The hub runs in a child process (with an empty in-memory [`EventSource`], so
//! no NATS is needed); this process opens N WebSocket connections to it, each
//! subscribed to its own bill, and reads the child's VmRSS before and after.

use futures::StreamExt;
use sapha_log::{EventSource, SourceError, SourceStream, StreamBounds};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A stream with nothing in it, live forever.
struct Empty;

impl EventSource for Empty {
    async fn bounds(&self) -> Result<StreamBounds, SourceError> {
        Ok(StreamBounds {
            first: 1,
            last: 0,
            epoch: String::new(),
        })
    }
    async fn read_from(&self, _start: u64) -> Result<SourceStream, SourceError> {
        Ok(futures::stream::pending().boxed())
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

async fn hub() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    let mut config = sapha_hub::Config::load(None, std::env::vars(), &[]).unwrap();
    config.limits.max_connections_per_ip = 1_000_000;
    config.limits.max_connections = 1_000_000;
    sapha_hub::run(config, listener, Empty, futures::future::pending())
        .await
        .unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arg = std::env::args().nth(1).unwrap_or_else(|| "2000".into());
    if arg == "hub" {
        return hub().await;
    }
    let n: usize = arg.parse().expect("a number of connections");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("hub")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let pid = child.id();
    // Warm up with a few connections so that one-time allocations are not counted.
    let mut conns = Vec::with_capacity(n + 10);
    for i in 0..10 {
        conns.push(open(port, i).await);
    }
    let before = rss_kib(pid);
    for i in 10..n + 10 {
        conns.push(open(port, i).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = rss_kib(pid);
    println!(
        "{n} idle connections: hub RSS {before} KiB -> {after} KiB, {:.1} KiB per connection",
        (after.saturating_sub(before)) as f64 / n as f64
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// A raw WebSocket handshake subscribing to one bill; reads the 101, the welcome and the ack.
async fn open(port: u16, i: usize) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!(
        "GET /v1/ws?topics=bill.b-{i} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    // The 101 response, then two frames (welcome, ack): read until the ack's text is in.
    while !String::from_utf8_lossy(&buf[..got]).contains("\"type\":\"ack\"") {
        let k = s.read(&mut buf[got..]).await.unwrap();
        assert!(k > 0, "the hub closed the connection");
        got += k;
    }
    s
}
