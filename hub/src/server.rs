//! The HTTP side: routes, admission (origins, connection limits), health and
//! metrics endpoints, and [`run`] with its two-phase graceful shutdown.

use crate::auth::{Auth, AuthConfigError, Grant};
use crate::client_ip::client_ip;
use crate::config::{Config, Secret};
use crate::consumer;
use crate::hub::{DynSource, Hub};
use crate::protocol::{Format, JSON_SUBPROTOCOL, PROTO_SUBPROTOCOL};
use crate::{sse, ws};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dashmap::DashMap;
use futures::StreamExt;
use prometheus_client::metrics::gauge::ConstGauge;
use sapha_edge::Edge;
use sapha_log::EventSource;
use serde::Deserialize;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Why the hub stopped with an error.
#[derive(Debug, Error)]
pub enum HubError {
    #[error("the http server failed")]
    Serve(#[source] std::io::Error),
    #[error("the auth section of the config cannot be used")]
    Auth(#[source] AuthConfigError),
    #[error("cannot connect to nats")]
    Nats(#[source] sapha_log::SourceError),
}

/// Counts connections, globally and per IP, for the limits.
#[derive(Default)]
struct Admission {
    total: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
}

/// A connection slot; returned on drop.
pub(crate) struct Permit {
    admission: Arc<Admission>,
    ip: IpAddr,
    /// Held by every connection, so that shutdown can wait for all of them: the
    /// receiver sees `None` once the last one is dropped.
    _alive: mpsc::Sender<()>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.total.fetch_sub(1, Ordering::AcqRel);
        if let dashmap::Entry::Occupied(mut e) = self.admission.per_ip.entry(self.ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

#[derive(Clone)]
pub(crate) struct App {
    pub(crate) hub: Arc<Hub>,
    /// The accept loop's counters, for `/metrics`.
    edge: Arc<sapha_edge::EdgeStats>,
    admission: Arc<Admission>,
    /// Per-IP token buckets of the state API: (tokens, when last filled).
    state_rate: Arc<DashMap<IpAddr, (f64, std::time::Instant)>>,
    /// Verifies client tokens (read-only after start).
    pub(crate) auth: Arc<Auth>,
    alive: mpsc::Sender<()>,
    /// The follow API (`follow`).
    pub(crate) follows: Arc<crate::follow::FollowApi>,
    /// The readiness probe's last result, for `/readyz`.
    pub(crate) readiness: Arc<crate::ready::Readiness>,
}

/// An HTTP error with a stable code, as JSON.
pub(crate) fn reject(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "type": "error", "code": code, "message": message });
    (status, axum::Json(body)).into_response()
}

/// Why a connection was refused.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        reject(self.status, self.code, self.message)
    }
}

fn refusal(status: StatusCode, code: &'static str, message: &'static str) -> Refusal {
    Refusal {
        status,
        code,
        message,
    }
}

impl App {
    /// Checks the origin and the connection limits; a permit or the refusal.
    /// The per-IP limit counts the client's address (see `client_ip`).
    fn admit(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<Permit, Refusal> {
        let limits = &self.hub.config.limits;
        let ip = client_ip(peer.ip(), headers, &self.hub.config.proxy.trusted);
        let refused = |r: Refusal| {
            self.hub
                .metrics
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            Err(r)
        };
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin.to_str().is_ok_and(|o| limits.origin_allowed(o));
            if !allowed {
                return refused(refusal(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    "this origin may not connect",
                ));
            }
        }
        if self.admission.total.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            self.admission.total.fetch_sub(1, Ordering::AcqRel);
            return refused(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_connections",
                "the hub is full; try another one or later",
            ));
        }
        {
            let mut count = self.admission.per_ip.entry(ip).or_insert(0);
            if *count >= limits.max_connections_per_ip {
                drop(count);
                self.admission.total.fetch_sub(1, Ordering::AcqRel);
                return refused(refusal(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_connections_from_ip",
                    "too many connections from this address",
                ));
            }
            *count += 1;
        }
        Ok(Permit {
            admission: self.admission.clone(),
            ip,
            _alive: self.alive.clone(),
        })
    }
}

/// The query string of `/v1/ws` and `/v1/sse`.
#[derive(Debug, Default, Deserialize)]
struct StreamQuery {
    /// Comma-separated topic filters.
    topics: Option<String>,
    /// The last stream sequence the client saw.
    since: Option<u64>,
    /// The stream epoch `since` belongs to (from `welcome`).
    epoch: Option<String>,
    /// A JWT, for browsers that cannot set `Authorization` (redacted in `Debug`).
    token: Option<Secret>,
    /// `true`: the client accepts `batch` frames (WebSocket only).
    batch: Option<bool>,
}

impl App {
    /// The connection's grant from its token (header first, then `?token=`),
    /// then the URL's topics checked against it: a refusal is an HTTP error.
    // The error is a response built once per refused connection; boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn authorize(
        &self,
        headers: &HeaderMap,
        query: &StreamQuery,
        topics: &[String],
    ) -> Result<Grant, Response> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            });
        let token = bearer.or(query.token.as_ref().map(|t| t.0.as_str()));
        let grant = self.auth.authenticate(token).map_err(|e| {
            self.hub
                .metrics
                .rejected_connections
                .fetch_add(1, Ordering::Relaxed);
            // The reason, never the token.
            tracing::debug!(reason = %e, "token refused");
            let mut r = reject(StatusCode::UNAUTHORIZED, "unauthorized", &e.to_string());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        })?;
        for t in topics {
            if let Ok(f) = sapha_proto::TopicFilter::parse(t) {
                if !grant.allows(&f) {
                    self.hub
                        .metrics
                        .rejected_connections
                        .fetch_add(1, Ordering::Relaxed);
                    let frame = crate::hub::forbidden(&crate::protocol::Id::none(), t);
                    return Err((
                        StatusCode::FORBIDDEN,
                        [(header::CONTENT_TYPE, "application/json")],
                        frame.to_json(),
                    )
                        .into_response());
                }
            }
        }
        Ok(grant)
    }
}

fn split_topics(topics: Option<&str>) -> Vec<String> {
    topics
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The answer to a query string that does not parse.
fn bad_query() -> Response {
    reject(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "the query string is ?topics=a,b&since=<seq>&epoch=<epoch>&batch=true (batch: true or false)",
    )
}

/// Whether `Sec-WebSocket-Key` is what RFC 6455 §4.2.1 asks for: base64 of
/// 16 bytes (axum only checks that the header is there).
fn valid_websocket_key(headers: &HeaderMap) -> bool {
    use base64::Engine;
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .is_some_and(|key| key.len() == 16)
}

/// The answer to a refused WebSocket handshake, with the JSON error body.
fn bad_handshake(message: &str) -> Response {
    reject(StatusCode::BAD_REQUEST, "bad_handshake", message)
}

/// A stream's query string must decode to UTF-8 (serde's form decoding
/// would replace what does not, and the replaced value would be used).
fn stream_query_refused(uri: &axum::http::Uri) -> Option<Response> {
    match crate::state::Params::parse(uri.query()) {
        Ok(_) => None,
        Err(crate::state::Answer::BadParameter { message, .. }) => {
            Some(reject(StatusCode::BAD_REQUEST, "bad_request", &message))
        }
        Err(_) => Some(bad_query()),
    }
}

async fn ws_handler(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(e) => {
            let status = e.status();
            return reject(
                status,
                "bad_handshake",
                &format!("not a websocket handshake: {e}"),
            );
        }
    };
    if !valid_websocket_key(&headers) {
        return bad_handshake("Sec-WebSocket-Key must be the base64 form of 16 bytes (RFC 6455)");
    }
    if let Some(r) = stream_query_refused(&uri) {
        return r;
    }
    let Ok(Query(query)) = query else {
        return bad_query();
    };
    let permit = match app.admit(peer, &headers) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let topics = split_topics(query.topics.as_deref());
    let grant = match app.authorize(&headers, &query, &topics) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let wants_proto = upgrade
        .requested_protocols()
        .any(|p| p.as_bytes() == PROTO_SUBPROTOCOL.as_bytes());
    let format = if wants_proto {
        Format::Proto
    } else {
        Format::Json
    };
    let cfg = &app.hub.config;
    let initial = ws::Initial {
        topics,
        since: query.since,
        epoch: query.epoch.clone(),
    };
    let batch = query.batch.unwrap_or(false);
    let hub = app.hub.clone();
    upgrade
        .protocols([PROTO_SUBPROTOCOL, JSON_SUBPROTOCOL])
        .read_buffer_size(cfg.websocket.read_buffer_bytes)
        .write_buffer_size(cfg.websocket.write_buffer_bytes)
        .max_message_size(cfg.limits.hard_max_frame_bytes)
        .max_frame_size(cfg.limits.hard_max_frame_bytes)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            let (conn, rx) = hub.register(format, batch);
            conn.set_grant(grant);
            tracing::debug!(conn = conn.id, %peer, format = format.name(), "websocket open");
            let (sink, stream) = socket.split();
            ws::serve(hub, conn, rx, sink, stream, initial).await;
        })
}

async fn sse_handler(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = stream_query_refused(&uri) {
        return r;
    }
    let Ok(Query(query)) = query else {
        return bad_query();
    };
    let topics = split_topics(query.topics.as_deref());
    if topics.is_empty() {
        return reject(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "name at least one topic: /v1/sse?topics=bill.b-2566-0123",
        );
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let since = last_event_id.or(query.since);
    let permit = match app.admit(peer, &headers) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let grant = match app.authorize(&headers, &query, &topics) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let epoch = query.epoch.clone();
    match sse::open(app.hub.clone(), permit, grant, topics, since, epoch) {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
                (header::HeaderName::from_static("x-accel-buffering"), "no"),
            ],
            axum::body::Body::from_stream(body),
        )
            .into_response(),
        Err(frame) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            frame.to_json(),
        )
            .into_response(),
    }
}

impl crate::state::Visibility for Grant {
    fn sees(&self, topic: &str) -> bool {
        sapha_proto::TopicFilter::parse(topic).is_ok_and(|f| self.allows(&f))
    }

    fn sees_all(&self) -> bool {
        matches!(self, Grant::All)
    }
}

impl App {
    /// Whether the peer is one of the trusted reverse proxies (exempt from
    /// the per-IP limits: they speak for many clients).
    pub(crate) fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        self.hub
            .config
            .proxy
            .trusted
            .iter()
            .any(|n| n.contains(&peer))
    }

    /// Takes one request from the client's per-IP bucket of the state API.
    pub(crate) fn state_rate_ok(&self, ip: IpAddr) -> bool {
        let limits = &self.hub.config.state;
        let (rate, burst) = (
            f64::from(limits.requests_per_second.max(1)),
            f64::from(limits.request_burst.max(1)),
        );
        let now = std::time::Instant::now();
        if self.state_rate.len() > 10_000 {
            self.state_rate
                .retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let mut bucket = self.state_rate.entry(ip).or_insert((burst, now));
        let (tokens, at) = *bucket;
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * rate).min(burst);
        if tokens < 1.0 {
            *bucket = (tokens, now);
            return false;
        }
        *bucket = (tokens - 1.0, now);
        true
    }
}

/// One state API request: the rate limit, the query string (decoded
/// strictly), the token (a `Bearer` header or `token=`), then the answer as
/// HTTP, with its `ETag` and `304` for a matching `If-None-Match`.
fn state_request(
    app: &App,
    peer: SocketAddr,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    answer: impl FnOnce(
        &crate::state::Params,
        &dyn crate::state::Visibility,
        crate::state::Conditional<'_>,
    ) -> crate::state::Answer,
) -> Response {
    use crate::state::Answer;
    let ip = client_ip(peer.ip(), headers, &app.hub.config.proxy.trusted);
    if !app.is_trusted_proxy(peer.ip()) && !app.state_rate_ok(ip) {
        return reject(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many state requests from this address; slow down",
        );
    }
    let bad_parameter = |parameter: &str, message: &str| {
        let body = serde_json::json!({
            "type": "error", "code": "bad_parameter", "parameter": parameter, "message": message,
        });
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
    };
    let parsed = crate::state::Params::parse(uri.query()).and_then(|mut p| {
        let token = p.take_token()?;
        Ok((p, token))
    });
    let (params, token) = match parsed {
        Ok(x) => x,
        Err(Answer::BadParameter { parameter, message }) => {
            return bad_parameter(&parameter, &message)
        }
        Err(_) => unreachable!("parsing a query only refuses a parameter"),
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
    let credential = bearer.or(token.as_deref());
    let grant = match app.auth.authenticate(credential) {
        Ok(g) => g,
        Err(e) => {
            let mut r = reject(StatusCode::UNAUTHORIZED, "unauthorized", &e.to_string());
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    };
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    let variant = representation(uri, credential);
    let cond = crate::state::Conditional {
        if_none_match,
        variant: &variant,
    };
    let etagged = |status: StatusCode, etag: &str, body: Option<serde_json::Value>| {
        let mut r = match body {
            Some(b) => (status, axum::Json(b)).into_response(),
            None => status.into_response(),
        };
        if let Ok(v) = header::HeaderValue::from_str(etag) {
            r.headers_mut().insert(header::ETAG, v);
        }
        r.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-cache"),
        );
        r
    };
    match answer(&params, &grant, cond) {
        Answer::Ok { body, etag } => etagged(StatusCode::OK, &etag, Some(body)),
        Answer::NotModified { etag } => etagged(StatusCode::NOT_MODIFIED, &etag, None),
        Answer::NotFound(message) => reject(StatusCode::NOT_FOUND, "not_found", &message),
        Answer::BadParameter { parameter, message } => bad_parameter(&parameter, &message),
        Answer::NotReady => reject(
            StatusCode::SERVICE_UNAVAILABLE,
            "state_not_ready",
            "the hub is still building its state from the stream; try again shortly",
        ),
    }
}

/// The answer to an id in the path that is not UTF-8 once percent-decoded.
fn bad_id() -> Response {
    let body = serde_json::json!({
        "type": "error", "code": "bad_parameter", "parameter": "id",
        "message": "id: not UTF-8 once percent-decoded",
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// What names an answer's representation in its `ETag`: the path and query
/// as sent and the credential (a token's grant decides what the answer
/// shows), hashed; so a tag matches only the URL and caller it came from.
fn representation(uri: &axum::http::Uri, credential: Option<&str>) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in [
        uri.path(),
        uri.query().unwrap_or(""),
        credential.unwrap_or(""),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn bills_handler(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let state = &app.hub.state;
    state_request(&app, peer, &headers, &uri, |p, who, cond| {
        state.bills(p, who, cond)
    })
}

async fn bill_handler(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let Ok(axum::extract::Path(id)) = id else {
        return bad_id();
    };
    let state = &app.hub.state;
    state_request(&app, peer, &headers, &uri, |_, who, cond| {
        state.bill(&id, who, cond)
    })
}

async fn sittings_handler(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let state = &app.hub.state;
    state_request(&app, peer, &headers, &uri, |p, who, cond| {
        state.sittings(p, who, cond)
    })
}

async fn sitting_handler(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let Ok(axum::extract::Path(id)) = id else {
        return bad_id();
    };
    let state = &app.hub.state;
    state_request(&app, peer, &headers, &uri, |_, who, cond| {
        if id == "live" {
            state.live(who, cond)
        } else {
            state.sitting(&id, who, cond)
        }
    })
}

/// Writes a snapshot of the state every `state.snapshot_interval_ms` (when it moved).
async fn snapshots(hub: Arc<Hub>) {
    let every = Duration::from_millis(hub.config.state.snapshot_interval_ms);
    if every.is_zero() {
        return;
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = hub.shutdown.cancelled() => return,
        }
        match hub.state.save(&*hub.source).await {
            Ok(Some(seq)) => tracing::info!(seq, "state snapshot written"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot write the state snapshot; will retry"),
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(app): State<App>) -> Response {
    let last = tokio::time::timeout(Duration::from_millis(500), app.hub.source.bounds())
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| b.last);
    // Figures read at scrape time, beside the hub's registered metrics.
    let mut scrape = prometheus_client::registry::Registry::with_prefix("sapha_hub");
    scrape.register_collector(Box::new(sapha_edge::metrics::EdgeCollector(
        app.edge.clone(),
    )));
    let state = &app.hub.state;
    scrape.register(
        "state_seq",
        "The stream position the state API reflects",
        ConstGauge::new(state.seq()),
    );
    scrape.register(
        "state_snapshot_seq",
        "The position of the last state snapshot written or loaded",
        ConstGauge::new(state.snapshot_seq()),
    );
    let text = app.hub.metrics.render(last, scrape);
    (
        [(header::CONTENT_TYPE, sapha_edge::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// Every `429` says when to come back. The per-IP request limiter of the
/// state and follow APIs refills at least one token a second
/// (`state.requests_per_second` >= 1), so one second is when the next
/// request fits; the per-IP connection limit frees a slot when any of that
/// address's connections ends. An answer that set its own (the follow API's
/// hourly cap) keeps it.
async fn retry_after(mut response: Response) -> Response {
    if response.status() == StatusCode::TOO_MANY_REQUESTS
        && !response.headers().contains_key(header::RETRY_AFTER)
    {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// How long a browser may cache a preflight answer.
const CORS_MAX_AGE: Duration = Duration::from_secs(600);

/// Which origins' pages may read a path from a browser (CORS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CorsScope {
    /// The public read side: the state API, SSE, `/sapha.js` and the
    /// dashboard's files (`limits.allowed_origins`).
    Public,
    /// The follow API (`follow.allowed_origins`).
    Follow,
}

/// The CORS scope of `path`; `None` for `/v1/ws` (browsers do not apply CORS
/// to WebSockets; its `Origin` is checked in `admit`) and the operator's
/// endpoints (`/metrics`, `/healthz`, `/readyz`), which get no CORS.
fn cors_scope(path: &str) -> Option<CorsScope> {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/v1/followers") || under("/v1/push") {
        Some(CorsScope::Follow)
    } else if under("/v1/bills")
        || under("/v1/sittings")
        || path == "/v1/sse"
        || [
            "/",
            "/index.html",
            "/sapha.js",
            "/dashboard.js",
            "/dashboard.css",
            "/sw.js",
        ]
        .contains(&path)
    {
        Some(CorsScope::Public)
    } else {
        None
    }
}

/// The CORS layer: pages at `limits.allowed_origins` may read the public
/// side, pages at `follow.allowed_origins` may call the follow API (`*`:
/// any page). Never with credentials: the APIs take tokens in
/// `Authorization`, not cookies, and `Access-Control-Allow-Credentials` is
/// never sent. The headers a page may send and read are the ones the APIs
/// use (docs/SECURITY.md, CORS).
fn cors(config: &Config) -> CorsLayer {
    let public = config.limits.allowed_origins.clone();
    let follow = config.follow.allowed_origins.clone();
    let allow = AllowOrigin::predicate(move |origin: &header::HeaderValue, parts| {
        let list = match cors_scope(parts.uri.path()) {
            Some(CorsScope::Public) => &public,
            Some(CorsScope::Follow) => &follow,
            None => return false,
        };
        origin
            .to_str()
            .is_ok_and(|o| crate::config::origin_listed(list, o))
    });
    CorsLayer::new()
        .allow_origin(allow)
        // Every method the hub's paths take; each path still answers only
        // its own (405 `method_not_allowed` for the others).
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            header::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::ETAG, header::RETRY_AFTER, header::WWW_AUTHENTICATE])
        .max_age(CORS_MAX_AGE)
}

/// Binds the hub's listener on `config.listen`, with `SO_REUSEPORT` when
/// `config.reuse_port` is set (Unix only; elsewhere the setting is refused).
pub async fn bind(config: &Config) -> std::io::Result<TcpListener> {
    if !config.reuse_port {
        return TcpListener::bind(config.listen).await;
    }
    #[cfg(unix)]
    {
        let socket = if config.listen.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(config.listen)?;
        socket.listen(LISTEN_BACKLOG)
    }
    #[cfg(not(unix))]
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "reuse_port needs SO_REUSEPORT (Unix)",
    ))
}

/// The accept backlog of a `reuse_port` listener (what std's `bind` uses on Linux).
#[cfg(unix)]
const LISTEN_BACKLOG: u32 = 4096;

/// Runs a hub on an already-bound listener until `shutdown` completes.
///
/// Shutdown stops accepting, closes every client with 1001 ("going away", so it
/// reconnects elsewhere and resumes), and waits up to `shutdown.drain_timeout_ms`
/// for the connections to end.
pub async fn run<S: EventSource>(
    config: Config,
    listener: TcpListener,
    source: S,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HubError> {
    serve(config, listener, Box::new(source), None, shutdown).await
}

/// [`run`], with the follow API's store (`None`: the follow API answers 503).
pub(crate) async fn serve(
    config: Config,
    listener: TcpListener,
    source: Box<dyn DynSource>,
    follows: Option<Box<dyn crate::follow::FollowBackend>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HubError> {
    let drain = Duration::from_millis(config.shutdown.drain_timeout_ms);
    let auth = Arc::new(Auth::from_config(&config.auth).map_err(HubError::Auth)?);
    let edge = Arc::new(Edge::new(
        config.limits.edge(&config.proxy),
        config.limits.max_connections,
    ));
    let hub = Arc::new(Hub::new(config, source));
    if let Some(secret) = &hub.config.state.cursor_secret {
        hub.state.set_cursor_secret(secret.0.as_bytes());
    }
    let consumer = tokio::spawn(consumer::run(hub.clone()));
    let snapshot_writer = tokio::spawn(snapshots(hub.clone()));
    let readiness = Arc::<crate::ready::Readiness>::default();
    let prober = tokio::spawn(crate::ready::probe(hub.clone(), readiness.clone()));
    let (alive, mut all_gone) = mpsc::channel::<()>(1);
    let app = App {
        hub: hub.clone(),
        edge: edge.stats().clone(),
        admission: Arc::default(),
        state_rate: Arc::default(),
        auth,
        alive,
        follows: Arc::new(crate::follow::FollowApi::new(follows)),
        readiness,
    };
    let cors = cors(&hub.config);
    let router = Router::new()
        .route("/v1/ws", get(ws_handler))
        .route("/v1/sse", get(sse_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(crate::ready::handler))
        .route("/metrics", get(metrics))
        .route("/v1/bills", get(bills_handler))
        .route("/v1/bills/{id}", get(bill_handler))
        .route("/v1/sittings", get(sittings_handler))
        .route("/v1/sittings/{id}", get(sitting_handler))
        .merge(crate::follow::routes())
        .merge(crate::web::routes())
        // Every error the hub answers carries the JSON error body.
        .fallback(|| async {
            reject(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such path: see docs/PROTOCOL.md, Endpoints",
            )
        })
        .method_not_allowed_fallback(|| async {
            reject(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this path does not take that method: see docs/PROTOCOL.md, Endpoints",
            )
        })
        .with_state(app)
        .layer(axum::middleware::map_response(retry_after))
        // Outermost, so that it answers preflights before method routing.
        .layer(cors);
    let server = sapha_edge::serve(listener, router, edge, hub.shutdown.clone());
    let mut server = tokio::spawn(server);
    tokio::select! {
        _ = shutdown => {}
        r = &mut server => {
            hub.close_all();
            hub.shutdown.cancel();
            return match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(HubError::Serve(e)),
                Err(_) => Ok(()),
            };
        }
    }
    tracing::info!("shutting down: closing clients with 1001");
    hub.close_all();
    hub.shutdown.cancel();
    let drained = tokio::time::timeout(drain, async {
        let _ = (&mut server).await;
        // Every connection holds a sender; `None` means the last one is gone.
        let _ = all_gone.recv().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!("drain deadline passed; dropping the remaining connections");
        server.abort();
    }
    let _ = consumer.await;
    let _ = snapshot_writer.await;
    let _ = prober.await;
    // One last snapshot, so that the next start replays only what comes after.
    if hub.config.state.snapshot_interval_ms > 0 {
        match tokio::time::timeout(Duration::from_secs(10), hub.state.save(&*hub.source)).await {
            Ok(Ok(Some(seq))) => tracing::info!(seq, "state snapshot written at shutdown"),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the state snapshot at shutdown"),
            Err(_) => tracing::warn!("the state snapshot at shutdown timed out"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_on(listen: std::net::SocketAddr, reuse_port: bool) -> Config {
        Config {
            listen,
            reuse_port,
            ..Config::default()
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn reuse_port_lets_processes_share_a_port_and_only_then() {
        let first = bind(&config_on("127.0.0.1:0".parse().unwrap(), true))
            .await
            .expect("the first listener binds");
        let taken = first.local_addr().unwrap();
        let second = bind(&config_on(taken, true))
            .await
            .expect("a second reuse_port listener shares the port");
        assert_eq!(second.local_addr().unwrap(), taken);
        let refused = bind(&config_on(taken, false)).await;
        assert_eq!(
            refused.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse,
            "without reuse_port the port stays taken"
        );
    }
}
