//! # The test harness
//!
//! Starts a real `nats-server` per test, on a random port (`-p -1`), with
//! JetStream in a temp dir, and kills it on drop. The port is read back from the
//! server's log. `scripts/test.sh` finds or installs the binary and exports its
//! path as `SAPHA_NATS_SERVER`.

pub mod fixtures;
/// A local LINE Messaging API look-alike, for the notifier's tests.
pub mod line_service;
pub mod openmetrics;
/// A local Web Push service that decrypts as a browser does, for the notifier's tests.
pub mod push_service;
mod receiver;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a nats-server may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A running nats-server that this test owns.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    websocket_port: Option<u16>,
    dir: tempfile::TempDir,
    websocket: bool,
    /// JetStream's `max_file_store`, to simulate a full disk; `None` for the default.
    max_file_store: Option<u64>,
    /// For a cluster node: `server_name`, `cluster { ... }` config lines.
    cluster: Option<String>,
}

/// The nats-server binary: `$SAPHA_NATS_SERVER`, `.tools/bin/nats-server`, or `nats-server`.
pub fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("SAPHA_NATS_SERVER") {
        return PathBuf::from(path);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/nats-server");
    if local.exists() {
        return local;
    }
    PathBuf::from("nats-server")
}

impl NatsServer {
    /// Starts a server with JetStream on a random port.
    pub fn start() -> NatsServer {
        Self::start_with(false)
    }

    /// Starts a server that also listens for NATS-over-WebSocket clients (the
    /// benchmark baseline).
    pub fn start_with_websocket() -> NatsServer {
        Self::start_with(true)
    }

    /// Starts a server whose JetStream may store at most `bytes` on disk, as if
    /// the disk were that small.
    pub fn start_with_max_file_store(bytes: u64) -> NatsServer {
        Self::start_inner(false, Some(bytes))
    }

    fn start_with(websocket: bool) -> NatsServer {
        Self::start_inner(websocket, None)
    }

    fn start_inner(websocket: bool, max_file_store: Option<u64>) -> NatsServer {
        let dir = tempfile::tempdir().expect("temp dir for nats-server");
        let mut server = NatsServer {
            child: None,
            port: 0,
            websocket_port: None,
            dir,
            websocket,
            max_file_store,
            cluster: None,
        };
        server.spawn(None);
        server
    }

    fn spawn(&mut self, port: Option<u16>) {
        let log = self.dir.path().join("nats.log");
        let _ = std::fs::remove_file(&log);
        let ws = if self.websocket {
            let ws_port = self.websocket_port.map(i32::from).unwrap_or(-1);
            format!("websocket {{ host: 127.0.0.1, port: {ws_port}, no_tls: true }}\n")
        } else {
            String::new()
        };
        let cluster = self.cluster.clone().unwrap_or_default();
        let conf = self.dir.path().join("nats.conf");
        let config = format!(
            "host: 127.0.0.1\nport: {}\nmax_payload: 1MB\njetstream {{ store_dir: \"{}\", {} }}\n{ws}{cluster}",
            port.map(i32::from).unwrap_or(-1),
            self.dir.path().join("js").display(),
            self.max_file_store.map(|b| format!("max_file_store: {b}")).unwrap_or_default(),
        );
        std::fs::write(&conf, config).expect("write nats.conf");
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&conf)
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}; run the tests with scripts/test.sh, which installs it",
                    nats_server_binary().display()
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let client = find_port(&text, "Listening for client connections on");
            let ws = find_port(&text, "Listening for websocket clients on");
            if let (true, Some(client)) = (text.contains("Server is ready"), client) {
                self.port = client;
                if self.websocket {
                    self.websocket_port = Some(ws.expect("websocket port in log"));
                }
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("nats-server exited with {status} at start:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "nats-server did not start in time:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (for RSS and CPU readings in benchmarks).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the server is running")
    }

    /// The NATS-over-WebSocket port, for servers started with `start_with_websocket`.
    pub fn websocket_port(&self) -> Option<u16> {
        self.websocket_port
    }

    /// Kills the server (SIGKILL: no goodbye to clients). JetStream data stays on disk.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same JetStream store.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port;
        self.spawn(Some(port));
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_port(log: &str, marker: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains(marker))?;
    let addr = line.rsplit(' ').next()?;
    addr.rsplit(':').next()?.trim().parse().ok()
}

/// A cluster of nats-servers on loopback, with JetStream, for R3 streams.
pub struct NatsCluster {
    pub nodes: Vec<NatsServer>,
}

/// A loopback port nobody listens on now (the OS picks it), for a process
/// that must be told its port up front (cluster routes, a hub restarted on
/// the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl NatsCluster {
    /// Starts `n` nodes routed to each other. JetStream elects its meta leader
    /// shortly after; creating an R3 stream may need a few retries.
    pub fn start(n: usize) -> NatsCluster {
        let route_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut nodes = Vec::with_capacity(n);
        for (i, port) in route_ports.iter().enumerate() {
            let routes: Vec<String> = route_ports
                .iter()
                .filter(|p| *p != port)
                .map(|p| format!("nats-route://127.0.0.1:{p}"))
                .collect();
            let cluster = format!(
                "server_name: n{i}\ncluster {{ name: sapha, host: 127.0.0.1, port: {port}, routes: [{}] }}\n",
                routes.join(", ")
            );
            let mut node = NatsServer {
                child: None,
                port: 0,
                websocket_port: None,
                dir: tempfile::tempdir().expect("temp dir for nats-server"),
                websocket: false,
                max_file_store: None,
                cluster: Some(cluster),
            };
            node.spawn(None);
            nodes.push(node);
        }
        NatsCluster { nodes }
    }

    /// Every node's client URL, comma-separated.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The `sapha` binary, built once per test process.
///
/// The tests crate is its own package, so `CARGO_BIN_EXE_sapha` is not set
/// here. The test binary runs from `<target>/<profile>/deps/`, so the binary
/// belongs in `<target>/<profile>/sapha`; `cargo build -p sapha --bin sapha`
/// with that target dir makes sure it is there and fresh (a no-op when it is;
/// scripts/test.sh builds it first). Set `SAPHA_BIN` to use another binary.
pub fn sapha_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("SAPHA_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_owned();
        let target = profile_dir.parent().expect("target dir").to_owned();
        let bin = profile_dir.join(format!("sapha{}", std::env::consts::EXE_SUFFIX));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "sapha",
            "--bin",
            "sapha",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
        // `cargo test` sets these for the test process. A build script that
        // watches them (ring's) would see a change and rebuild everything above
        // it, then rebuild again on the next `cargo build` from the workspace root.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_MANIFEST_")
                || matches!(
                    key.as_ref(),
                    "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                )
            {
                cmd.env_remove(key.as_ref());
            }
        }
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .expect("running cargo build for the sapha binary");
        assert!(status.success(), "cargo build -p sapha failed");
        assert!(bin.exists(), "no binary at {}", bin.display());
        bin
    })
    .clone()
}

/// Polls `condition` every 20 ms until it holds or `deadline` passes; returns whether it held.
pub async fn wait_until<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The directory of the repository, for scenarios and example configs.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The events of one shipped scenario file (`scenarios/<file>`), in file order.
pub fn scenario(file: &str) -> Vec<sapha_proto::Event> {
    std::fs::read_to_string(repo_root().join("scenarios").join(file))
        .unwrap_or_else(|e| panic!("reading scenarios/{file}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| sapha_proto::Event::from_json(l).expect("a shipped scenario event parses"))
        .collect()
}

/// Waits until a GET of `url` answers 2xx, for at most `deadline`.
pub async fn wait_http_ok(url: &str, deadline: Duration) -> bool {
    wait_until(deadline, || async move {
        reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await
}
