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
//! - **Pre-request caps.** Connections that have not yet completed their first
//!   request head are capped in total and per client IP. When a cap is
//!   reached the *oldest* such connection (of that IP, or overall) is closed to
//!   make room: a flood of silent sockets from one address only cycles its own
//!   sockets, and a real request from the same address still gets through.
//! - **Descriptor headroom.** At start the soft `RLIMIT_NOFILE` is raised to
//!   the hard one; the edge then keeps [`EdgeLimits::fd_reserve`] descriptors
//!   free for NATS, files and health checks. Connections beyond the budget are
//!   accepted and closed at once, which keeps the listener's backlog moving
//!   instead of starving everything when `accept` would fail.

use axum::extract::ConnectInfo;
use axum::Router;
use http_body_util::BodyExt;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
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
    /// Most connections, in total, that have not completed a first request head.
    pub max_pending: usize,
    /// Most such connections from one IP address.
    pub max_pending_per_ip: usize,
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
    /// Connections waiting for their first request head now (gauge).
    pub pending: AtomicUsize,
    /// Connections closed because no request head came within the deadline.
    pub request_timeouts: AtomicU64,
    /// Pre-request connections closed to make room under a pending cap.
    pub evicted: AtomicU64,
    /// Connections closed at accept because the descriptor budget was spent.
    pub refused_no_headroom: AtomicU64,
}

impl EdgeStats {
    /// The figures as Prometheus text, each name prefixed with `prefix`
    /// (`sapha_hub`, `sapha_ingest`).
    pub fn render(&self, prefix: &str, out: &mut String) {
        use std::fmt::Write;
        let rows: [(&str, &str, &str, u64); 5] = [
            (
                "connections_open",
                "gauge",
                "TCP connections the HTTP edge holds",
                self.open.load(Ordering::Relaxed) as u64,
            ),
            (
                "connections_pending",
                "gauge",
                "Connections that have not completed a first request head",
                self.pending.load(Ordering::Relaxed) as u64,
            ),
            (
                "request_deadline_closes_total",
                "counter",
                "Connections closed for sending no complete request head in time",
                self.request_timeouts.load(Ordering::Relaxed),
            ),
            (
                "pending_evictions_total",
                "counter",
                "Pre-request connections closed to make room under a pending cap",
                self.evicted.load(Ordering::Relaxed),
            ),
            (
                "refused_no_headroom_total",
                "counter",
                "Connections closed at accept to keep the descriptor reserve",
                self.refused_no_headroom.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} {kind}");
            let _ = writeln!(out, "{prefix}_{name} {value}");
        }
    }
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

    /// Enters a new connection into the pending set, closing the oldest ones
    /// over a cap. Returns its id and the token that closes it.
    fn admit(&self, ip: IpAddr) -> (u64, CancellationToken) {
        let exempt = self.limits.exempt.iter().any(|n| n.contains(&ip));
        let per_ip = if exempt {
            usize::MAX
        } else {
            self.limits.max_pending_per_ip.max(1)
        };
        let mut pending = self.pending();
        let (id, token, evicted) = pending.admit(ip, per_ip, self.limits.max_pending.max(1));
        self.stats
            .evicted
            .fetch_add(evicted as u64, Ordering::Relaxed);
        self.stats.pending.store(pending.len(), Ordering::Relaxed);
        (id, token)
    }

    /// Takes a connection out of the pending set (first request, or closed).
    fn leave(&self, id: u64) {
        let mut pending = self.pending();
        pending.leave(id);
        self.stats.pending.store(pending.len(), Ordering::Relaxed);
    }
}

/// Reads `RLIMIT_NOFILE` and raises the soft limit to the hard one (as Go's
/// runtime does); returns the soft limit in force.
fn raise_nofile_limit() -> u64 {
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

/// Connections that have not completed a first request head, oldest first.
#[derive(Default)]
struct Pending {
    next_id: u64,
    /// By id; ids grow, so the first entry is the oldest connection.
    order: BTreeMap<u64, (IpAddr, CancellationToken)>,
    /// Each IP's pending ids, oldest first.
    per_ip: HashMap<IpAddr, VecDeque<u64>>,
}

impl Pending {
    fn len(&self) -> usize {
        self.order.len()
    }

    /// Adds a connection from `ip`, first closing the oldest of that IP's
    /// while it has `per_ip` or more, then the oldest overall while there are
    /// `total` or more. Returns the id, its token and how many were closed.
    fn admit(
        &mut self,
        ip: IpAddr,
        per_ip: usize,
        total: usize,
    ) -> (u64, CancellationToken, usize) {
        let mut evicted = 0;
        while self.per_ip.get(&ip).is_some_and(|q| q.len() >= per_ip) {
            let oldest = self.per_ip.get(&ip).and_then(|q| q.front().copied());
            let Some(oldest) = oldest else { break };
            self.close(oldest);
            evicted += 1;
        }
        while self.order.len() >= total {
            let Some((&oldest, _)) = self.order.first_key_value() else {
                break;
            };
            self.close(oldest);
            evicted += 1;
        }
        let id = self.next_id;
        self.next_id += 1;
        let token = CancellationToken::new();
        self.order.insert(id, (ip, token.clone()));
        self.per_ip.entry(ip).or_default().push_back(id);
        (id, token, evicted)
    }

    /// Removes `id` and cancels its token.
    fn close(&mut self, id: u64) {
        if let Some((_, token)) = self.remove(id) {
            token.cancel();
        }
    }

    /// Removes `id` without closing it (its first request arrived).
    fn leave(&mut self, id: u64) {
        self.remove(id);
    }

    fn remove(&mut self, id: u64) -> Option<(IpAddr, CancellationToken)> {
        let (ip, token) = self.order.remove(&id)?;
        if let Some(q) = self.per_ip.get_mut(&ip) {
            q.retain(|&i| i != id);
            if q.is_empty() {
                self.per_ip.remove(&ip);
            }
        }
        Some((ip, token))
    }
}

/// Requests in progress on one connection; the request deadline runs only
/// while there are none.
#[derive(Default)]
struct Activity {
    active: AtomicUsize,
    changed: Notify,
}

/// One request in progress; dropped with the response body (or with the
/// request, when the connection goes first).
struct InFlight(Arc<Activity>);

impl Activity {
    fn begin(self: &Arc<Self>) -> InFlight {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// Resolves once no request has been in progress for `deadline`.
    async fn idle_for(&self, deadline: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.active.load(Ordering::Acquire) == 0 {
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
        self.0.active.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// A descriptor this edge holds; counted until the socket is dropped, also
/// after an upgrade hands it to a WebSocket task.
struct Counted {
    tcp: TcpStream,
    stats: Arc<EdgeStats>,
}

impl Counted {
    fn new(tcp: TcpStream, stats: Arc<EdgeStats>) -> Counted {
        OPEN.fetch_add(1, Ordering::AcqRel);
        stats.open.fetch_add(1, Ordering::Relaxed);
        Counted { tcp, stats }
    }
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
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
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
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors despite the reserve, or a connection
                    // reset before accept: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                        _ = stop.cancelled() => break,
                    }
                }
            },
            _ = stop.cancelled() => break,
        };
        if OPEN.load(Ordering::Acquire) >= edge.budget {
            edge.stats
                .refused_no_headroom
                .fetch_add(1, Ordering::Relaxed);
            if last_refusal_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                last_refusal_log = Some(Instant::now());
                tracing::warn!(
                    budget = edge.budget,
                    "descriptor budget spent: closing new connections at accept"
                );
            }
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let io = Counted::new(tcp, edge.stats.clone());
        let (pending_id, evict) = edge.admit(peer.ip());
        let activity = Arc::new(Activity::default());
        let service = {
            let edge = edge.clone();
            let activity = activity.clone();
            let router_service = router_service.clone();
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                edge.leave(pending_id);
                let in_flight = activity.begin();
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                let call = hyper::service::Service::call(&router_service, req);
                async move {
                    let response = call.await?;
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
        let edge = edge.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                r = &mut conn => if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "http connection ended with an error");
                },
                _ = activity.idle_for(deadline) => {
                    edge.stats.request_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, "no request head in time: closed");
                }
                _ = evict.cancelled() => {
                    tracing::debug!(%peer, "pre-request connection closed to make room");
                }
            }
            edge.leave(pending_id);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_full_ip_closes_its_own_oldest_connection() {
        let mut p = Pending::default();
        let (a, ta, _) = p.admit(ip(1), 2, 100);
        let (_, tb, _) = p.admit(ip(1), 2, 100);
        let (_, other, _) = p.admit(ip(2), 2, 100);
        let (_, _, evicted) = p.admit(ip(1), 2, 100);
        assert_eq!(evicted, 1);
        assert!(ta.is_cancelled(), "the oldest of 127.0.0.1 is closed");
        assert!(!tb.is_cancelled() && !other.is_cancelled());
        assert_eq!(p.len(), 3);
        assert!(!p.order.contains_key(&a));
    }

    #[test]
    fn a_full_edge_closes_the_oldest_connection_of_any_ip() {
        let mut p = Pending::default();
        let (_, t1, _) = p.admit(ip(1), 10, 2);
        let (_, t2, _) = p.admit(ip(2), 10, 2);
        let (_, t3, evicted) = p.admit(ip(3), 10, 2);
        assert_eq!(evicted, 1);
        assert!(t1.is_cancelled() && !t2.is_cancelled() && !t3.is_cancelled());
        assert_eq!(p.per_ip.len(), 2, "an IP with nothing pending is forgotten");
    }

    #[test]
    fn a_connection_that_sent_its_request_is_no_longer_evictable() {
        let mut p = Pending::default();
        let (a, ta, _) = p.admit(ip(1), 1, 10);
        p.leave(a);
        let (_, _, evicted) = p.admit(ip(1), 1, 10);
        assert_eq!(evicted, 0);
        assert!(!ta.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn idle_deadline_waits_for_requests_in_progress() {
        let activity = Arc::new(Activity::default());
        let in_flight = activity.begin();
        let idle = activity.idle_for(Duration::from_secs(10));
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
