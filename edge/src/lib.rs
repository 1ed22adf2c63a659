//! The HTTP edge that the hub and ingest share: one accept loop that decides
//! how long a connection may hold a descriptor without doing any work.
//!
//! Three rules, whatever protocol the bytes turn out to be (HTTP/1, HTTP/2
//! prior knowledge, TLS by mistake, nothing at all):
//!
//! - **Request deadline.** A connection with no request in progress (from
//!   accept, and between keep-alive requests) must complete a request head
//!   within [`EdgeLimits::request_deadline`], or it is closed. A request in
//!   progress (a streaming SSE body, an ingest upload with its own body
//!   deadline) is never cut by it; an upgraded WebSocket leaves the edge.
//! - **Pending caps.** Connections with no request in progress (before their
//!   first request head, and idle between keep-alive requests: either way they
//!   hold a descriptor without a request) are capped in total and per client
//!   IP. When a cap is reached the *oldest* such connection (of that IP, or
//!   overall) that may be closed is closed to make room: one that has been
//!   pending for at least [`EdgeLimits::pending_min_age`] and has no bytes
//!   waiting unread in its socket (a request head in the kernel buffer, not yet
//!   read because its task has not had a turn, is not idle). With none such,
//!   the newcomer is admitted over the cap, and a trimmer brings the address
//!   back to it as its connections age. A flood of silent or idle sockets from
//!   one address only cycles its own sockets, a real request from the same
//!   address still gets through, and a reconnect storm (hundreds of handshakes
//!   at once from one NAT) is not cut.
//! - **Descriptor headroom.** At start the soft `RLIMIT_NOFILE` is raised to
//!   the hard one; the edge then keeps [`EdgeLimits::fd_reserve`] descriptors
//!   free for NATS, files and health checks. At the budget a new connection
//!   takes the place of the oldest pending one; with none to close, it is
//!   accepted and closed at once, which keeps the listener's backlog moving
//!   instead of starving everything when `accept` would fail.

pub mod metrics;
mod pending;

use pending::{has_unread, Caps, Pending};

use axum::extract::ConnectInfo;
use axum::Router;
use http_body_util::BodyExt;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Connections (of every edge in this process) that hold a descriptor now;
/// compared with the descriptor budget on each accept. Process-wide because
/// `sapha demo` runs the hub's and ingest's edges in one process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// How long connections may idle and how many may wait for their first request.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// Longest time a connection with no request in progress may take to
    /// complete a request head (slowloris, silent sockets, idle keep-alive).
    pub request_deadline: Duration,
    /// Most connections, in total, with no request in progress (before the
    /// first request head, or idle between keep-alive requests).
    pub max_pending: usize,
    /// Most such connections from one IP address.
    pub max_pending_per_ip: usize,
    /// How long a connection must have been pending before a pending cap may
    /// close it. Younger ones (a reconnect storm's handshakes not yet read)
    /// are never closed by a cap; the count may exceed the cap meanwhile and
    /// is brought back to it as they reach this age.
    pub pending_min_age: Duration,
    /// Descriptors kept free below the process limit; beyond that, new
    /// connections are closed at accept.
    pub fd_reserve: usize,
    /// Peers exempt from the per-IP pending cap (trusted reverse proxies, which
    /// carry many clients' connections from one address).
    pub exempt: Vec<ipnet::IpNet>,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            request_deadline: Duration::from_secs(10),
            max_pending: 1024,
            max_pending_per_ip: 64,
            pending_min_age: Duration::from_secs(2),
            fd_reserve: 64,
            exempt: Vec::new(),
        }
    }
}

/// What the edge did, for `/metrics`.
#[derive(Debug, Default)]
pub struct EdgeStats {
    /// Connections this edge holds now (gauge).
    pub open: AtomicUsize,
    /// Connections with no request in progress now (gauge).
    pub pending: AtomicUsize,
    /// Connections closed because no request head came within the deadline.
    pub request_timeouts: AtomicU64,
    /// Pending connections closed to make room under a pending cap or at the
    /// descriptor budget.
    pub evicted: AtomicU64,
    /// Connections closed at accept because the descriptor budget was spent.
    pub refused_no_headroom: AtomicU64,
}

/// One accept loop's limits, counters and pending set.
pub struct Edge {
    limits: EdgeLimits,
    stats: Arc<EdgeStats>,
    pending: Mutex<Pending>,
    /// Connections the process may hold before new ones are refused.
    budget: usize,
}

impl Edge {
    /// Raises the soft descriptor limit to the hard one and computes the
    /// budget. `expected` is the most connections the server means to serve
    /// (its `max_connections`); a warning says when they cannot fit.
    pub fn new(limits: EdgeLimits, expected: usize) -> Edge {
        let nofile = raise_nofile_limit();
        let budget = nofile.saturating_sub(limits.fd_reserve as u64).max(1) as usize;
        if expected.saturating_add(limits.max_pending) > budget {
            tracing::warn!(
                descriptor_limit = nofile,
                reserve = limits.fd_reserve,
                expected,
                max_pending = limits.max_pending,
                "the descriptor limit is below max_connections + max_pending_connections; \
                 connections beyond {budget} are refused at accept (raise `ulimit -n`)"
            );
        }
        Edge {
            limits,
            stats: Arc::default(),
            pending: Mutex::default(),
            budget,
        }
    }

    pub fn stats(&self) -> &Arc<EdgeStats> {
        &self.stats
    }

    /// Connections the process may hold before new ones are closed at accept.
    pub fn budget(&self) -> usize {
        self.budget
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // The pending set stays consistent between statements: recover it.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters a connection with no request in progress into the pending set,
    /// closing the oldest ones over a cap that may be closed (see
    /// [`Pending::trim`]); `close` is the connection's token, `fd` its
    /// socket. Returns its id in the set.
    fn admit(&self, ip: IpAddr, close: CancellationToken, fd: RawFd) -> u64 {
        let caps = self.caps(ip);
        let mut pending = self.pending();
        let (id, evicted) = pending.admit(ip, close, fd, caps, Instant::now(), &has_unread);
        self.stats
            .evicted
            .fetch_add(evicted as u64, Ordering::Relaxed);
        self.stats.pending.store(pending.len(), Ordering::Relaxed);
        id
    }

    /// The pending caps for `ip` (trusted proxies have no per-IP cap).
    fn caps(&self, ip: IpAddr) -> Caps {
        let exempt = self.limits.exempt.iter().any(|n| n.contains(&ip));
        Caps {
            per_ip: if exempt {
                usize::MAX
            } else {
                self.limits.max_pending_per_ip.max(1)
            },
            total: self.limits.max_pending.max(1),
            min_age: self.limits.pending_min_age,
        }
    }

    /// Brings the addresses (and the total) that went over a cap while their
    /// connections were too young to close back to the caps, now that some
    /// are old enough. Run every [`Edge::trim_interval`].
    fn trim_over(&self) {
        let mut pending = self.pending();
        let now = Instant::now();
        let over: Vec<IpAddr> = pending.over.drain().collect();
        let mut evicted = 0;
        for ip in over {
            evicted += pending.trim(ip, self.caps(ip), 0, now, &has_unread);
        }
        self.stats
            .evicted
            .fetch_add(evicted as u64, Ordering::Relaxed);
        self.stats.pending.store(pending.len(), Ordering::Relaxed);
    }

    /// How often [`Edge::trim_over`] runs: a quarter of the minimum age.
    fn trim_interval(&self) -> Duration {
        (self.limits.pending_min_age / 4).max(Duration::from_millis(50))
    }

    /// Takes a connection out of the pending set (a request began, or it closed).
    fn leave(&self, id: u64) {
        let mut pending = self.pending();
        pending.leave(id);
        self.stats.pending.store(pending.len(), Ordering::Relaxed);
    }

    /// Closes the oldest pending connection with no unread bytes (else the
    /// oldest one), if there is one, to free its descriptor (at the budget,
    /// or when `accept` ran out of descriptors): whatever their age, as the
    /// descriptor limit is hard.
    fn evict_oldest(&self) -> bool {
        let mut pending = self.pending();
        let closed = pending.close_for_descriptor(&has_unread);
        if closed {
            self.stats.evicted.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.pending.store(pending.len(), Ordering::Relaxed);
        closed
    }

    /// At the budget: closes the oldest pending connection so that a new one
    /// can take its place. The closed socket is released a moment later, when
    /// its task runs, so new connections may run ahead of releases by at most
    /// half the reserve; beyond that (or with nothing pending) there is no room.
    fn make_room(&self) -> bool {
        let ceiling = self.budget.saturating_add(self.limits.fd_reserve / 2);
        OPEN.load(Ordering::Acquire) < ceiling && self.evict_oldest()
    }
}

/// Reads `RLIMIT_NOFILE` and raises the soft limit to the hard one (as Go's
/// runtime does); returns the soft limit in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// One connection's requests in progress. While it has none it is in the
/// edge's pending set (capped, oldest closed first) and the request deadline
/// runs.
struct Conn {
    edge: Arc<Edge>,
    ip: IpAddr,
    /// The socket (for the pending caps' look at unread bytes).
    fd: RawFd,
    /// Cancelled to close the connection (to make room for another).
    close: CancellationToken,
    state: Mutex<ConnState>,
    /// Woken when requests begin or end, to restart the deadline.
    changed: Notify,
    /// Requests the service was called for (see [`Counted`]).
    requests: AtomicU64,
}

#[derive(Default)]
struct ConnState {
    /// Requests in progress.
    active: usize,
    /// Its id in the edge's pending set, while it is there.
    pending: Option<u64>,
    /// Upgraded (the socket left for a WebSocket task) or closed: never pending again.
    gone: bool,
}

/// One request in progress; dropped with the response body (or with the
/// request, when the connection goes first).
struct InFlight(Arc<Conn>);

impl Conn {
    /// A new connection, pending until its first request head.
    fn open(edge: Arc<Edge>, ip: IpAddr, fd: RawFd) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            edge,
            ip,
            fd,
            close: CancellationToken::new(),
            state: Mutex::default(),
            changed: Notify::new(),
            requests: AtomicU64::new(0),
        });
        conn.idle(&mut conn.state());
        conn
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// With no request in progress: enters the pending set.
    fn idle(&self, state: &mut ConnState) {
        if state.active == 0 && !state.gone && state.pending.is_none() {
            state.pending = Some(self.edge.admit(self.ip, self.close.clone(), self.fd));
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::AcqRel);
        {
            let mut state = self.state();
            state.active += 1;
            if let Some(id) = state.pending.take() {
                self.edge.leave(id);
            }
        }
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Leaves the pending set for good: upgraded, or closed.
    fn gone(&self) {
        let mut state = self.state();
        state.gone = true;
        if let Some(id) = state.pending.take() {
            self.edge.leave(id);
        }
    }

    fn active(&self) -> usize {
        self.state().active
    }

    /// Resolves once no request has been in progress for `deadline`.
    async fn idle_for(&self, deadline: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.active() == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(deadline) => return,
                    _ = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut state = self.0.state();
            state.active -= 1;
            self.0.idle(&mut state);
        }
        self.0.changed.notify_waiters();
    }
}

/// A descriptor this edge holds; counted until the socket is dropped, also
/// after an upgrade hands it to a WebSocket task.
///
/// It also gives hyper's own HTTP/1 error answers a body. hyper answers a
/// request head it cannot parse (400), one too large (431: over about
/// 400 KiB, or over 100 headers) or a URI too long (414) itself, with an empty
/// body, before any service sees a request. The writer tells such an answer
/// apart by counting: a final response head written when every request the
/// service was called for already has its answer is hyper's own. It is
/// replaced by the same status with the JSON error body the servers use,
/// `{"type":"error","code":...,"message":...}`, and `connection: close`.
struct Counted {
    tcp: TcpStream,
    stats: Arc<EdgeStats>,
    /// The connection, for how many requests reached the service.
    conn: Arc<Conn>,
    /// Final HTTP/1 response heads written so far.
    heads: u64,
    /// Whether writes are still looked at: not once upgraded (101) or when
    /// the connection turned out not to be HTTP/1 (HTTP/2 starts otherwise).
    inspect: bool,
    /// Whether anything was written yet.
    wrote: bool,
    /// The answer that replaces hyper's own, and how much of it is written;
    /// whatever hyper writes meanwhile (its empty answer) is dropped.
    replacement: Option<(Vec<u8>, usize)>,
}

impl Counted {
    fn new(tcp: TcpStream, stats: Arc<EdgeStats>, conn: Arc<Conn>) -> Counted {
        OPEN.fetch_add(1, Ordering::AcqRel);
        stats.open.fetch_add(1, Ordering::Relaxed);
        Counted {
            tcp,
            stats,
            conn,
            heads: 0,
            inspect: true,
            wrote: false,
            replacement: None,
        }
    }

    /// Looks at the start of a write: a final response head of hyper's own
    /// with an error status starts a replacement.
    fn look(&mut self, first: &[u8]) {
        if !self.inspect || first.is_empty() {
            return;
        }
        let first_write = !self.wrote;
        self.wrote = true;
        if !first.starts_with(b"HTTP/1.") {
            if first_write {
                self.inspect = false; // HTTP/2
            }
            return;
        }
        let Some(status) = first
            .get(9..12)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u16>().ok())
        else {
            return;
        };
        if status == 101 {
            self.inspect = false; // WebSocket bytes follow
            return;
        }
        if status < 200 {
            return; // 100 Continue: an interim head
        }
        let own = self.heads >= self.conn.requests.load(Ordering::Acquire);
        self.heads += 1;
        if own && status >= 400 {
            self.replacement = Some((protocol_error(status), 0));
        }
    }

    /// Writes the rest of the replacement; ready once it is all written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Some((bytes, written)) = &mut self.replacement else {
            return Poll::Ready(Ok(()));
        };
        while *written < bytes.len() {
            match Pin::new(&mut self.tcp).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()))
                }
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// hyper's own error answer, with the JSON error body.
fn protocol_error(status: u16) -> Vec<u8> {
    let (reason, code, message) = match status {
        400 => (
            "Bad Request",
            "bad_request",
            "the request is not valid HTTP/1.1",
        ),
        414 => (
            "URI Too Long",
            "uri_too_long",
            "the request's URI is too long",
        ),
        431 => (
            "Request Header Fields Too Large",
            "request_header_fields_too_large",
            "the request line and headers are too large (over about 400 KiB, or over 100 \
             headers): send shorter query parameters",
        ),
        _ => ("Error", "http_error", "the request could not be served"),
    };
    let body = serde_json::json!({ "type": "error", "code": code, "message": message }).to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::AcqRel);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.replacement.is_none() {
            self.look(buf);
        }
        if self.replacement.is_some() {
            return self.poll_replacement(cx).map_ok(|()| buf.len());
        }
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if self.replacement.is_none() {
            if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
                self.look(first);
            }
        }
        if self.replacement.is_some() {
            let total = bufs.iter().map(|b| b.len()).sum();
            return self.poll_replacement(cx).map_ok(|()| total);
        }
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.poll_replacement(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut self.tcp).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Serves `router` on an already-bound listener until `stop` is cancelled,
/// then lets open HTTP exchanges finish (upgraded WebSockets are the caller's
/// to drain). Each request carries `ConnectInfo<SocketAddr>` of its peer.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    edge: Arc<Edge>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    let deadline = edge.limits.request_deadline.max(Duration::from_millis(1));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(deadline);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let router_service = hyper_util::service::TowerToHyperService::new(router);
    let mut refusal_log = RateLimited::default();
    let mut accept_error_log = RateLimited::default();
    // Brings addresses left over a pending cap (their connections were too
    // young to close) back to it as their connections age.
    let trimmer = {
        let (edge, stop) = (edge.clone(), stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(edge.trim_interval());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => edge.trim_over(),
                    _ = stop.cancelled() => return,
                }
            }
        })
    };
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors despite the reserve (another part of
                    // the process, or the system's limit): free one by closing
                    // the oldest pending connection. Either way wait a little
                    // rather than spin on a listener that stays readable.
                    let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                    if out_of_fds {
                        edge.evict_oldest();
                    }
                    if accept_error_log.due() {
                        tracing::warn!(error = %e, "accept failed");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        _ = stop.cancelled() => break,
                    }
                }
            },
            _ = stop.cancelled() => break,
        };
        if OPEN.load(Ordering::Acquire) >= edge.budget && !edge.make_room() {
            edge.stats
                .refused_no_headroom
                .fetch_add(1, Ordering::Relaxed);
            if refusal_log.due() {
                tracing::warn!(
                    budget = edge.budget,
                    "descriptor budget spent: closing new connections at accept"
                );
            }
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let fd = tcp.as_raw_fd();
        let state = Conn::open(edge.clone(), peer.ip(), fd);
        let io = Counted::new(tcp, edge.stats.clone(), state.clone());
        let service = {
            let state = state.clone();
            let router_service = router_service.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let in_flight = state.begin();
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                let call = hyper::service::Service::call(&router_service, req);
                async move {
                    let response = call.await?;
                    if response.status() == axum::http::StatusCode::SWITCHING_PROTOCOLS {
                        // The socket leaves for the upgraded protocol's task
                        // (which has its own limits); it is never pending again.
                        in_flight.0.gone();
                    }
                    // The request stays in progress until its body is done.
                    Ok::<_, std::convert::Infallible>(response.map(move |body| {
                        axum::body::Body::new(body.map_frame(move |frame| {
                            let _ = &in_flight;
                            frame
                        }))
                    }))
                }
            })
        };
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                r = &mut conn => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "http connection ended with an error");
                },
                _ = state.idle_for(deadline) => {
                    state.edge.stats.request_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "no request head in time: closed");
                }
                _ = state.close.cancelled() => {
                    tracing::debug!(%peer, "pending connection closed to make room");
                }
            }
            // Before `conn` (and with it any response body) is dropped, so
            // that the end of a request cannot re-enter the pending set.
            state.gone();
        });
    }
    drop(listener);
    trimmer.abort();
    graceful.shutdown().await;
    Ok(())
}

/// A warning at most every 10 s (a flood would otherwise write one per connection).
#[derive(Default)]
struct RateLimited(Option<Instant>);

impl RateLimited {
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    /// Caps with no minimum age (the age rule has its own tests).
    fn caps(per_ip: usize, total: usize) -> Caps {
        Caps {
            per_ip,
            total,
            min_age: Duration::ZERO,
        }
    }

    /// Nothing is ever unread (the unread rule has its own tests).
    fn never(_: RawFd) -> bool {
        false
    }

    /// Adds a connection from `ip`; its id, its token and how many were closed.
    fn add(
        p: &mut Pending,
        ip: IpAddr,
        per_ip: usize,
        total: usize,
    ) -> (u64, CancellationToken, usize) {
        let token = CancellationToken::new();
        let (id, evicted) = p.admit(
            ip,
            token.clone(),
            -1,
            caps(per_ip, total),
            Instant::now(),
            &never,
        );
        (id, token, evicted)
    }

    fn edge(max_pending_per_ip: usize) -> Arc<Edge> {
        let limits = EdgeLimits {
            max_pending_per_ip,
            pending_min_age: Duration::ZERO,
            ..EdgeLimits::default()
        };
        Arc::new(Edge::new(limits, 0))
    }

    /// A young connection is never closed by a cap: the count goes over it,
    /// and once the connections are old enough a trim brings it back.
    #[test]
    fn a_cap_closes_only_connections_past_the_minimum_age() {
        let mut p = Pending::default();
        let start = Instant::now();
        let caps = Caps {
            per_ip: 2,
            total: 100,
            min_age: Duration::from_secs(2),
        };
        let tokens: Vec<CancellationToken> = (0..5)
            .map(|i| {
                let t = CancellationToken::new();
                let at = start + Duration::from_millis(100 * i);
                let (_, evicted) = p.admit(ip(1), t.clone(), -1, caps, at, &never);
                assert_eq!(evicted, 0, "connection {i}: nobody is old enough to close");
                t
            })
            .collect();
        assert_eq!(p.len(), 5);
        assert!(
            p.over.contains(&ip(1)),
            "the address is marked over its cap"
        );
        // 2.25 s after the first: the first three are past 2 s; closing the
        // oldest three brings the address back to its cap.
        let later = start + Duration::from_millis(2_250);
        let evicted = p.trim(ip(1), caps, 0, later, &never);
        assert_eq!(evicted, 3);
        assert!(tokens[..3].iter().all(CancellationToken::is_cancelled));
        assert!(!tokens[3].is_cancelled() && !tokens[4].is_cancelled());
        assert!(!p.over.contains(&ip(1)));
        // The total cap follows the same rule.
        let mut p = Pending::default();
        let caps = Caps {
            per_ip: 100,
            total: 1,
            min_age: Duration::from_secs(2),
        };
        let first = CancellationToken::new();
        p.admit(ip(1), first.clone(), -1, caps, start, &never);
        p.admit(ip(2), CancellationToken::new(), -1, caps, start, &never);
        assert!(!first.is_cancelled() && p.len() == 2);
        let (_, evicted) = p.admit(
            ip(3),
            CancellationToken::new(),
            -1,
            caps,
            start + Duration::from_secs(3),
            &never,
        );
        assert_eq!(evicted, 2, "both old ones make room for the newcomer");
        assert!(first.is_cancelled());
    }

    /// A connection whose request head waits unread in the kernel buffer is
    /// not idle: the cap skips it and closes the next oldest.
    #[test]
    fn a_connection_with_unread_bytes_is_not_closed_by_a_cap() {
        let mut p = Pending::default();
        let now = Instant::now();
        let caps = caps(2, 100);
        let unread_fd = 7;
        let unread = move |fd: RawFd| fd == unread_fd;
        let busy = CancellationToken::new();
        let idle = CancellationToken::new();
        p.admit(ip(1), busy.clone(), unread_fd, caps, now, &unread);
        p.admit(ip(1), idle.clone(), -1, caps, now, &unread);
        let (_, evicted) = p.admit(ip(1), CancellationToken::new(), -1, caps, now, &unread);
        assert_eq!(evicted, 1);
        assert!(!busy.is_cancelled(), "the oldest has a request waiting");
        assert!(idle.is_cancelled());
        // At the descriptor budget, too, the idle one goes first.
        let mut p = Pending::default();
        let busy = CancellationToken::new();
        let idle = CancellationToken::new();
        p.admit(ip(1), busy.clone(), unread_fd, caps, now, &unread);
        p.admit(ip(2), idle.clone(), -1, caps, now, &unread);
        assert!(p.close_for_descriptor(&unread));
        assert!(idle.is_cancelled() && !busy.is_cancelled());
        // With only busy ones left, the descriptor limit is hard: the oldest goes.
        assert!(p.close_for_descriptor(&unread));
        assert!(busy.is_cancelled());
    }

    /// The real look at a socket: bytes sent and not yet read are seen,
    /// without being consumed.
    #[tokio::test]
    async fn unread_bytes_are_seen_on_a_real_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        assert!(!has_unread(server.as_raw_fd()), "nothing sent yet");
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        server.readable().await.unwrap();
        assert!(has_unread(server.as_raw_fd()));
        let mut buf = [0u8; 3];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"GET", "the peek consumed nothing");
    }

    #[test]
    fn a_full_ip_closes_its_own_oldest_connection() {
        let mut p = Pending::default();
        let (a, ta, _) = add(&mut p, ip(1), 2, 100);
        let (_, tb, _) = add(&mut p, ip(1), 2, 100);
        let (_, other, _) = add(&mut p, ip(2), 2, 100);
        let (_, _, evicted) = add(&mut p, ip(1), 2, 100);
        assert_eq!(evicted, 1);
        assert!(ta.is_cancelled(), "the oldest of 127.0.0.1 is closed");
        assert!(!tb.is_cancelled() && !other.is_cancelled());
        assert_eq!(p.len(), 3);
        assert!(!p.order.contains_key(&a));
    }

    #[test]
    fn a_full_edge_closes_the_oldest_connection_of_any_ip() {
        let mut p = Pending::default();
        let (_, t1, _) = add(&mut p, ip(1), 10, 2);
        let (_, t2, _) = add(&mut p, ip(2), 10, 2);
        let (_, t3, evicted) = add(&mut p, ip(3), 10, 2);
        assert_eq!(evicted, 1);
        assert!(t1.is_cancelled() && !t2.is_cancelled() && !t3.is_cancelled());
        assert_eq!(p.per_ip.len(), 2, "an IP with nothing pending is forgotten");
    }

    #[test]
    fn a_connection_with_a_request_in_progress_is_not_evictable() {
        let edge = edge(1);
        let busy = Conn::open(edge.clone(), ip(1), -1);
        let in_flight = busy.begin();
        let other = Conn::open(edge.clone(), ip(1), -1);
        assert!(!busy.close.is_cancelled() && !other.close.is_cancelled());
        drop(in_flight);
        // Idle again, `busy` is the newest of 127.0.0.1: the older one goes.
        assert!(
            other.close.is_cancelled(),
            "the older pending one is closed"
        );
        assert!(!busy.close.is_cancelled());
        assert_eq!(edge.stats.pending.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_connection_idle_between_requests_counts_against_the_cap() {
        let edge = edge(2);
        let served: Vec<_> = (0..2)
            .map(|_| Conn::open(edge.clone(), ip(1), -1))
            .collect();
        for conn in &served {
            drop(conn.begin()); // one request, answered; now idle on keep-alive
        }
        let newcomer = Conn::open(edge.clone(), ip(1), -1);
        assert!(
            served[0].close.is_cancelled(),
            "the longest idle one is closed"
        );
        assert!(!served[1].close.is_cancelled() && !newcomer.close.is_cancelled());
        assert_eq!(edge.stats.evicted.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_upgraded_or_closed_connection_never_becomes_pending() {
        let edge = edge(1);
        let upgraded = Conn::open(edge.clone(), ip(1), -1);
        let in_flight = upgraded.begin();
        upgraded.gone();
        drop(in_flight);
        assert_eq!(edge.stats.pending.load(Ordering::Relaxed), 0);
        let closed = Conn::open(edge.clone(), ip(1), -1);
        closed.gone();
        assert_eq!(edge.stats.pending.load(Ordering::Relaxed), 0);
        let next = Conn::open(edge.clone(), ip(1), -1);
        assert!(!upgraded.close.is_cancelled() && !next.close.is_cancelled());
    }

    #[test]
    fn at_the_budget_the_oldest_pending_connection_makes_room() {
        let edge = edge(10);
        assert!(!edge.evict_oldest(), "nothing pending: no room to make");
        let old = Conn::open(edge.clone(), ip(1), -1);
        let young = Conn::open(edge.clone(), ip(2), -1);
        assert!(edge.evict_oldest());
        assert!(old.close.is_cancelled() && !young.close.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_deadline_waits_for_requests_in_progress() {
        let conn = Conn::open(edge(10), ip(1), -1);
        let in_flight = conn.begin();
        let idle = conn.idle_for(Duration::from_secs(10));
        tokio::pin!(idle);
        // A request in progress: an hour passes and the deadline does not fire.
        tokio::select! {
            _ = &mut idle => panic!("the deadline fired during a request"),
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        drop(in_flight);
        let started = tokio::time::Instant::now();
        idle.await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }
}
