//! The HTTP ingest endpoint for the parliament's own systems:
//! `POST /v1/events` (one event or a JSON array), `GET /healthz`, `GET /metrics`.
//!
//! A batch is parsed and validated whole before anything is written, so a
//! malformed or invalid batch writes nothing. Events are then appended in order;
//! if one is refused against the stored history (a sequence gap, an illegal
//! stage move) the events before it stay stored, the response says which, and
//! resending the whole batch is safe because stored events come back as
//! `duplicate`. Error bodies are documented in docs/PUBLISHER.md.

use crate::pipeline::{Outcome, Pipeline, SubmitError};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use dashmap::DashMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use sapha_edge::{Edge, EdgeLimits, EdgeStats};
use sapha_log::EventLog;
use sapha_proto::validate::validate;
use sapha_proto::Event;
use serde_json::{json, Value};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Named bearer tokens. Only names are ever logged.
#[derive(Clone, Default)]
pub struct Tokens(Vec<(String, String)>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "Tokens({names:?})")
    }
}

impl Tokens {
    /// Parses `name:secret,name2:secret2`. Secrets must be at least 16 bytes.
    pub fn parse(spec: &str) -> Result<Tokens, String> {
        let mut tokens = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, secret) = part
                .split_once(':')
                .ok_or_else(|| "each token is written name:secret".to_string())?;
            if secret.len() < 16 {
                return Err(format!("token '{name}' is shorter than 16 bytes"));
            }
            tokens.push((name.to_owned(), secret.to_owned()));
        }
        if tokens.is_empty() {
            return Err("no ingest token configured".into());
        }
        Ok(Tokens(tokens))
    }

    /// Reads a tokens file: one `name:secret` per line; blank lines and `#`
    /// comments are ignored.
    pub fn read_file(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading tokens file {}: {e}", path.display()))?;
        Tokens::parse_file_text(&text)
    }

    /// Parses a tokens file's text (see [`Tokens::read_file`]).
    pub fn parse_file_text(text: &str) -> Result<Tokens, String> {
        let spec: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        Tokens::parse(&spec.join(","))
    }

    /// The name of the token `presented` matches, compared in constant time.
    pub fn check(&self, presented: &str) -> Option<String> {
        let mut found = None;
        for (name, secret) in &self.0 {
            if bool::from(secret.as_bytes().ct_eq(presented.as_bytes())) {
                found = Some(name.clone());
            }
        }
        found
    }
}

/// The tokens in force, swappable while the server runs (token rotation).
#[derive(Clone, Debug)]
pub struct SharedTokens(Arc<RwLock<Tokens>>);

impl SharedTokens {
    pub fn new(tokens: Tokens) -> Self {
        SharedTokens(Arc::new(RwLock::new(tokens)))
    }

    pub fn check(&self, presented: &str) -> Option<String> {
        self.0
            .read()
            .expect("tokens lock poisoned")
            .check(presented)
    }

    pub fn replace(&self, tokens: Tokens) {
        *self.0.write().expect("tokens lock poisoned") = tokens;
    }

    /// Re-reads `path` whenever it changes, so tokens can be added, rotated and
    /// revoked without a restart. A file that fails to parse keeps the old tokens
    /// and logs why. Stops when `stop` resolves.
    pub async fn watch_file(
        self,
        path: PathBuf,
        every: std::time::Duration,
        stop: impl Future<Output = ()>,
    ) {
        // Reads go to tokio's blocking pool (tokio::fs), never the async workers.
        let mut seen = tokio::fs::read(&path).await.ok();
        let mut tick = tokio::time::interval(every);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop => return,
            }
            let now = tokio::fs::read(&path).await.ok();
            if now.is_none() || now == seen {
                continue;
            }
            let parsed = String::from_utf8(now.clone().unwrap_or_default())
                .map_err(|e| format!("tokens file {}: {e}", path.display()))
                .and_then(|text| Tokens::parse_file_text(&text));
            match parsed {
                Ok(tokens) => {
                    tracing::info!(file = %path.display(), tokens = ?tokens, "ingest tokens reloaded");
                    self.replace(tokens);
                    seen = now;
                }
                Err(e) => {
                    tracing::error!(error = %e, "tokens file not reloaded; keeping the old tokens")
                }
            }
        }
    }
}

/// Settings of the ingest endpoint.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub tokens: SharedTokens,
    /// Largest request body; larger gets 413. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Most events in one batch; more gets 413. Default 1,000.
    pub max_batch: usize,
    /// Longest time a request body may take to arrive once its headers are
    /// accepted; slower gets 408 `body_timeout`. Default 30 s.
    pub body_timeout: Duration,
    /// Most request bodies being read at once from one IP address; more get
    /// 429 `too_many_bodies`. Default 4.
    pub max_bodies_per_ip: usize,
    /// The connection limits, the same as the hub's (`header_read_timeout_ms`,
    /// pending caps, descriptor reserve).
    pub edge: EdgeLimits,
}

impl IngestConfig {
    pub fn new(tokens: SharedTokens) -> Self {
        IngestConfig {
            tokens,
            max_body_bytes: 1024 * 1024,
            max_batch: 1000,
            body_timeout: Duration::from_secs(30),
            max_bodies_per_ip: 4,
            edge: EdgeLimits::default(),
        }
    }
}

struct App<L: EventLog> {
    pipeline: Arc<Pipeline<L>>,
    config: IngestConfig,
    /// Bodies being read now, per client IP (`max_bodies_per_ip`).
    bodies: DashMap<IpAddr, usize>,
    /// The accept loop's counters, for `/metrics`.
    edge: Arc<EdgeStats>,
}

/// Serves ingest on an already-bound listener until `shutdown` resolves,
/// through the edge that also guards the hub (deadlines, pending caps,
/// descriptor headroom).
pub async fn serve<L: EventLog>(
    listener: tokio::net::TcpListener,
    pipeline: Arc<Pipeline<L>>,
    config: IngestConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let edge = Arc::new(Edge::new(config.edge.clone(), 0));
    let app = Arc::new(App {
        pipeline,
        config,
        bodies: DashMap::new(),
        edge: edge.stats().clone(),
    });
    let router = Router::new()
        .route("/v1/events", post(post_events::<L>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::<L>))
        .with_state(app);
    let stop = tokio_util::sync::CancellationToken::new();
    let on_shutdown = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        on_shutdown.cancel();
    });
    sapha_edge::serve(listener, router, edge, stop).await
}

async fn metrics<L: EventLog>(State(app): State<Arc<App<L>>>) -> impl IntoResponse {
    let mut scrape = prometheus_client::registry::Registry::with_prefix("sapha_ingest");
    scrape.register_collector(Box::new(sapha_edge::metrics::EdgeCollector(
        app.edge.clone(),
    )));
    let text = app.pipeline.metrics().render_with(&scrape);
    (
        [(header::CONTENT_TYPE, sapha_edge::metrics::CONTENT_TYPE)],
        text,
    )
}

/// A body being read from one IP; returned on drop.
struct BodySlot<'a> {
    bodies: &'a DashMap<IpAddr, usize>,
    ip: IpAddr,
}

impl<'a> BodySlot<'a> {
    fn take(bodies: &'a DashMap<IpAddr, usize>, ip: IpAddr, max: usize) -> Option<Self> {
        let mut count = bodies.entry(ip).or_insert(0);
        if *count >= max.max(1) {
            return None;
        }
        *count += 1;
        Some(BodySlot { bodies, ip })
    }
}

impl Drop for BodySlot<'_> {
    fn drop(&mut self) {
        if let dashmap::Entry::Occupied(mut e) = self.bodies.entry(self.ip) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

/// An error response: `{"error": {...}, "results": [...]}`.
struct Failure {
    status: StatusCode,
    error: Value,
    results: Vec<Value>,
}

impl Failure {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Failure {
            status,
            error: json!({ "code": code, "message": message.into() }),
            results: Vec::new(),
        }
    }

    fn at(mut self, index: usize, event_id: Option<&str>, field: Option<String>) -> Self {
        self.error["index"] = index.into();
        if let Some(id) = event_id {
            self.error["event_id"] = id.into();
        }
        if let Some(field) = field {
            self.error["field"] = field.into();
        }
        self
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({ "error": self.error, "results": self.results })),
        )
            .into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sapha-ingest\""),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

fn authorize(tokens: &SharedTokens, headers: &HeaderMap) -> Result<String, Failure> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "send 'Authorization: Bearer <token>'",
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    tokens.check(presented).ok_or_else(|| {
        Failure::new(
            StatusCode::UNAUTHORIZED,
            "bad_token",
            "the token is not valid",
        )
    })
}

fn status_of(error: &SubmitError) -> StatusCode {
    match error {
        SubmitError::Unavailable(_) | SubmitError::Backlog(_) => StatusCode::SERVICE_UNAVAILABLE,
        SubmitError::Refused(_) => StatusCode::INSUFFICIENT_STORAGE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

async fn post_events<L: EventLog>(
    State(app): State<Arc<App<L>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match ingest(&app, peer.ip(), &headers, body).await {
        Ok(results) => (StatusCode::OK, Json(json!({ "results": results }))).into_response(),
        Err(failure) => failure.into_response(),
    }
}

/// Reads the body only after the headers passed: within `max_body_bytes`,
/// `body_timeout` and `max_bodies_per_ip`.
async fn read_body<L: EventLog>(
    app: &App<L>,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, Failure> {
    let max = app.config.max_body_bytes;
    let too_large = || {
        Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body exceeds {max} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    let Some(_slot) = BodySlot::take(&app.bodies, ip, app.config.max_bodies_per_ip) else {
        return Err(Failure::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_bodies",
            format!(
                "{} request bodies from this address are being read already; send one at a time",
                app.config.max_bodies_per_ip
            ),
        ));
    };
    let limited = Limited::new(body, max).collect();
    match tokio::time::timeout(app.config.body_timeout, limited).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("the body could not be read: {e}"),
        )),
        Err(_) => Err(Failure::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {} ms",
                app.config.body_timeout.as_millis()
            ),
        )),
    }
}

async fn ingest<L: EventLog>(
    app: &App<L>,
    ip: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<Value>, Failure> {
    // The headers first: no body byte is read for an unauthenticated request.
    let token = authorize(&app.config.tokens, headers)?;
    let token = token.as_str();
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().unwrap_or_default().trim() == "application/json");
    if !is_json {
        return Err(Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send 'Content-Type: application/json'",
        ));
    }
    let body = read_body(app, ip, headers, body).await?;
    let values = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(item @ Value::Object(_)) => vec![item],
        Ok(_) => {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the body must be one event object or an array of them",
            ))
        }
        Err(e) => {
            return Err(Failure::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                e.to_string(),
            ))
        }
    };
    if values.is_empty() {
        return Err(Failure::new(
            StatusCode::BAD_REQUEST,
            "empty_batch",
            "the batch has no events",
        ));
    }
    if values.len() > app.config.max_batch {
        return Err(Failure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} events; the limit is {}",
                values.len(),
                app.config.max_batch
            ),
        ));
    }
    // Parse and validate the whole batch before writing anything.
    let mut events = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        let event_id = value
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let event = Event::from_value(value).map_err(|e| {
            Failure::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()).at(
                index,
                event_id.as_deref(),
                Some(e.path.clone()),
            )
        })?;
        validate(&event).map_err(|e| {
            Failure::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()).at(
                index,
                Some(&event.event_id),
                Some(e.field()),
            )
        })?;
        events.push(event);
    }
    let source = format!("http:{token}");
    let mut results = Vec::with_capacity(events.len());
    for (index, event) in events.into_iter().enumerate() {
        let event_id = event.event_id.clone();
        match app.pipeline.submit(event, &source).await {
            Ok(Outcome::Stored { stream_seq }) => results.push(
                json!({ "index": index, "event_id": event_id, "status": "stored", "stream_seq": stream_seq }),
            ),
            Ok(Outcome::Duplicate) => results
                .push(json!({ "index": index, "event_id": event_id, "status": "duplicate" })),
            Err(e) => {
                tracing::warn!(token_name = token, event_id = %event_id, code = e.code(), error = %e, "event rejected");
                let mut failure = Failure::new(status_of(&e), e.code(), e.to_string()).at(
                    index,
                    Some(&event_id),
                    e.field(),
                );
                failure.results = results;
                return Err(failure);
            }
        }
    }
    tracing::info!(token_name = token, events = results.len(), "batch ingested");
    Ok(results)
}
