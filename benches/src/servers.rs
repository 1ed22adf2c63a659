//! The processes under test: nats-server (JetStream, plus its WebSocket
//! listener for the baseline; started by the test harness, `sapha_tests`) and
//! the release `sapha` binary running `hub`.
//! Each listens on 127.0.0.1 only, on a port the OS chose, and is killed on drop.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long a child asked to stop (SIGTERM) may take before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(60);

/// A child process killed on drop; with `graceful`, first asked to stop with
/// SIGTERM (so a profiler wrapping it can write its output).
struct Owned {
    child: Child,
    graceful: bool,
}

impl Drop for Owned {
    fn drop(&mut self) {
        if self.graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A nats-server with JetStream and a WebSocket listener: the test harness's
/// server (default limits otherwise, so the baseline is nats-server as shipped).
pub type Nats = sapha_tests::NatsServer;

/// `sapha hub` as its own process.
pub struct Hub {
    child: Owned,
    pub port: u16,
}

/// The release `sapha` binary: `$SAPHA_BIN`, else `release/sapha` in
/// `$CARGO_TARGET_DIR` or the workspace's `target/`.
pub fn sapha_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SAPHA_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/sapha")
}

impl Hub {
    /// Starts `sapha hub` against `nats`, with the default config except the
    /// per-IP and total connection limits (every benchmark client is on
    /// 127.0.0.1) and any `extra` `key=value` settings.
    pub async fn start(nats: &Nats, extra: &[String]) -> anyhow::Result<Hub> {
        Self::start_on(nats, extra, free_port()?).await
    }

    /// Starts `sapha hub` on `port` (with `reuse_port=true` in `extra`,
    /// several hubs share one port).
    pub async fn start_on(nats: &Nats, extra: &[String], port: u16) -> anyhow::Result<Hub> {
        // `$SAPHA_HUB_WRAPPER` (e.g. `valgrind --tool=callgrind`) runs the hub
        // under a profiler: words split on whitespace, the hub stopped with SIGTERM.
        let wrapper = std::env::var("SAPHA_HUB_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(program) => {
                let mut cmd = Command::new(program);
                cmd.args(words).arg(sapha_binary());
                cmd
            }
            None => Command::new(sapha_binary()),
        };
        cmd.arg("hub")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--nats-url")
            .arg(nats.url())
            .args(["--set", "limits.max_connections=100000"])
            .args(["--set", "limits.max_connections_per_ip=100000"]);
        for kv in extra {
            cmd.args(["--set", kv]);
        }
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it: cargo build --release -p sapha)",
                    sapha_binary().display()
                )
            })?;
        let mut hub = Hub {
            child: Owned {
                child,
                graceful: !wrapper.trim().is_empty(),
            },
            port,
        };
        // A profiler slows the start down a lot.
        let deadline =
            Instant::now() + START_DEADLINE * if wrapper.trim().is_empty() { 1 } else { 10 };
        loop {
            if http_status(port, "/readyz").await == Some(200) {
                return Ok(hub);
            }
            if let Some(status) = hub.child.child.try_wait()? {
                bail!("the hub exited with {status}");
            }
            if Instant::now() > deadline {
                bail!("the hub was not ready in time");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.child.id()
    }
}

/// A port the OS picked as free; the caller binds it right after.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The whole response to `GET path` on 127.0.0.1:port (HTTP/1.0: the server
/// closes when done), or `None`.
async fn http_response(port: u16, path: &str, patience: Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(patience, s.read_to_end(&mut out))
        .await
        .ok()?
        .ok()?;
    String::from_utf8(out).ok()
}

/// The status code of `GET path` on 127.0.0.1:port, or `None`.
pub async fn http_status(port: u16, path: &str) -> Option<u16> {
    let text = http_response(port, path, Duration::from_secs(2)).await?;
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The body of `GET path` (for the hub's `/metrics`).
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    let text = http_response(port, path, Duration::from_secs(5)).await?;
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}
