//! # A local LINE Messaging API
//!
//! A look-alike of LINE's push message endpoint,
//! `POST /v2/bot/message/push` (<https://developers.line.biz/en/reference/messaging-api/#send-push-message>),
//! answering as LINE documents it:
//! - `401 {"message": ...}` without `Authorization: Bearer {channel access token}`;
//! - `400 {"message": ...}` for a body that is not JSON or not
//!   `Content-Type: application/json`, or an `X-Line-Retry-Key` that is not a UUID;
//! - `409` with `x-line-accepted-request-id` for a retry key that already
//!   succeeded (the message is not recorded again);
//! - a scripted failure from [`LineService::fail_next`];
//! - `400 {"message": "The request body has N error(s)", "details": [...]}` for
//!   a missing `to`, not 1 to 5 messages, or a text message with no text or
//!   over 5000 characters (only `text` messages are modelled);
//! - else `200 {"sentMessages": [{"id", "quoteToken"}]}` with `x-line-request-id`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};

use crate::receiver::{is_uuid, lock, random_uuid, Arrivals, Server};

/// The most messages one push request may carry.
pub const MAX_MESSAGES: usize = 5;
/// The most characters a text message may have.
pub const MAX_TEXT_CHARS: usize = 5000;

/// A push request that LINE accepted.
#[derive(Clone, Debug)]
pub struct LinePush {
    /// The `to` user, group or room id.
    pub to: String,
    /// The messages, as sent.
    pub messages: Vec<Value>,
    /// The `X-Line-Retry-Key` header, if sent.
    pub retry_key: Option<String>,
    /// The `x-line-request-id` answered.
    pub request_id: String,
    /// When it arrived.
    pub received_at: Instant,
}

impl LinePush {
    /// The `text` of each message, in order.
    pub fn texts(&self) -> Vec<String> {
        let text = |m: &Value| m["text"].as_str().unwrap_or_default().to_string();
        self.messages.iter().map(text).collect()
    }
}

/// A running LINE look-alike on `127.0.0.1`; stops when dropped.
pub struct LineService {
    server: Server,
    shared: Arc<Shared>,
}

impl LineService {
    /// Starts a service that accepts `channel_token` as the channel access token.
    pub async fn start(channel_token: &str) -> LineService {
        let shared = Arc::new(Shared {
            token: channel_token.to_string(),
            book: Mutex::new(Book::default()),
            arrivals: Arrivals::default(),
        });
        let router = axum::Router::new()
            .route("/v2/bot/message/push", post(push))
            .with_state(shared.clone());
        let server = Server::start(router).await;
        LineService { server, shared }
    }

    /// `http://127.0.0.1:PORT`, to use in place of `https://api.line.me`.
    pub fn base_url(&self) -> String {
        self.server.origin()
    }

    /// The accepted push requests, in order of arrival.
    pub fn received(&self) -> Vec<LinePush> {
        lock(&self.shared.book).received.clone()
    }

    /// How many push requests were accepted.
    pub fn count(&self) -> usize {
        self.shared.arrivals.count()
    }

    /// Waits until at least `n` push requests were accepted; false after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        self.shared.arrivals.wait_for(n, timeout).await
    }

    /// Answers the next `times` authorized requests with `status` and a
    /// LINE-shaped error body (`{"message": ...}`; 429 with LINE's rate-limit text).
    ///
    /// # Panics
    /// If `status` is not an HTTP status code.
    pub fn fail_next(&self, status: u16, times: usize) {
        let status = StatusCode::from_u16(status).expect("fail_next: not an HTTP status");
        let mut book = lock(&self.shared.book);
        book.scripted.extend(std::iter::repeat_n(status, times));
    }
}

/// What the handler shares with the [`LineService`].
struct Shared {
    token: String,
    book: Mutex<Book>,
    arrivals: Arrivals,
}

#[derive(Default)]
struct Book {
    received: Vec<LinePush>,
    /// Succeeded retry keys: their request id and `sentMessages`.
    accepted: HashMap<String, (String, Value)>,
    scripted: VecDeque<StatusCode>,
}

/// A LINE error answer.
struct LineError {
    status: StatusCode,
    body: Value,
    accepted_request_id: Option<String>,
}

impl LineError {
    fn new(status: StatusCode, message: &str) -> LineError {
        LineError {
            status,
            body: json!({ "message": message }),
            accepted_request_id: None,
        }
    }

    /// `400` with one `details` entry per problem.
    fn invalid_body(details: Vec<Value>) -> LineError {
        let message = format!("The request body has {} error(s)", details.len());
        LineError {
            status: StatusCode::BAD_REQUEST,
            body: json!({ "message": message, "details": details }),
            accepted_request_id: None,
        }
    }
}

impl IntoResponse for LineError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        headers.insert("x-line-request-id", header_value(&random_uuid()));
        if let Some(id) = self.accepted_request_id {
            headers.insert("x-line-accepted-request-id", header_value(&id));
        }
        response
    }
}

/// `POST /v2/bot/message/push`.
async fn push(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    match shared.accept(&headers, &body) {
        Ok((request_id, sent)) => {
            let mut response = Json(sent).into_response();
            response
                .headers_mut()
                .insert("x-line-request-id", header_value(&request_id));
            response
        }
        Err(error) => error.into_response(),
    }
}

impl Shared {
    /// Checks a push request and records it: its request id and answer body.
    fn accept(&self, headers: &HeaderMap, body: &[u8]) -> Result<(String, Value), LineError> {
        self.authorize(headers)?;
        let retry_key = retry_key(headers)?;
        if let Some(key) = &retry_key {
            self.check_not_accepted(key)?;
        }
        self.scripted()?;
        let request = parse_body(headers, body)?;
        Ok(self.record(request, retry_key))
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), LineError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match bearer {
            Some(token) if token.trim() == self.token => Ok(()),
            Some(_) => Err(LineError::new(
                StatusCode::UNAUTHORIZED,
                "Authentication failed. Confirm that the access token in the authorization header is valid.",
            )),
            None => Err(LineError::new(
                StatusCode::UNAUTHORIZED,
                "Authorization header required. Must follow the scheme, 'Authorization: Bearer <ACCESS TOKEN>'",
            )),
        }
    }

    fn check_not_accepted(&self, key: &str) -> Result<(), LineError> {
        let book = lock(&self.book);
        let Some((request_id, sent)) = book.accepted.get(key) else {
            return Ok(());
        };
        let mut body = sent.clone();
        body["message"] = json!("The retry key is already accepted");
        Err(LineError {
            status: StatusCode::CONFLICT,
            body,
            accepted_request_id: Some(request_id.clone()),
        })
    }

    fn scripted(&self) -> Result<(), LineError> {
        match lock(&self.book).scripted.pop_front() {
            None => Ok(()),
            Some(StatusCode::TOO_MANY_REQUESTS) => Err(LineError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "The API rate limit has been exceeded. Try again later.",
            )),
            Some(status) => Err(LineError::new(status, "scripted failure")),
        }
    }

    fn record(&self, request: PushRequest, retry_key: Option<String>) -> (String, Value) {
        let request_id = random_uuid();
        let sent: Vec<Value> = request.messages.iter().map(|_| sent_message()).collect();
        let sent = json!({ "sentMessages": sent });
        let mut book = lock(&self.book);
        if let Some(key) = &retry_key {
            book.accepted
                .insert(key.clone(), (request_id.clone(), sent.clone()));
        }
        book.received.push(LinePush {
            to: request.to,
            messages: request.messages,
            retry_key,
            request_id: request_id.clone(),
            received_at: Instant::now(),
        });
        drop(book);
        self.arrivals.add();
        (request_id, sent)
    }
}

/// The `X-Line-Retry-Key` header, which must be a UUID if sent.
fn retry_key(headers: &HeaderMap) -> Result<Option<String>, LineError> {
    let Some(value) = headers.get("x-line-retry-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if is_uuid(key) => Ok(Some(key.to_ascii_lowercase())),
        _ => Err(LineError::new(
            StatusCode::BAD_REQUEST,
            "The value of the X-Line-Retry-Key header is invalid",
        )),
    }
}

/// A validated push request body.
struct PushRequest {
    to: String,
    messages: Vec<Value>,
}

/// Parses and validates the JSON body.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<PushRequest, LineError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json_type {
        let message = "The Content-Type header must be application/json";
        return Err(LineError::new(StatusCode::BAD_REQUEST, message));
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        LineError::new(
            StatusCode::BAD_REQUEST,
            "The request body is not valid JSON",
        )
    })?;
    let details = body_errors(&value);
    if !details.is_empty() {
        return Err(LineError::invalid_body(details));
    }
    Ok(PushRequest {
        to: value["to"].as_str().unwrap_or_default().to_string(),
        messages: value["messages"].as_array().cloned().unwrap_or_default(),
    })
}

/// LINE's `details` for what is wrong with a push body (empty if nothing).
fn body_errors(body: &Value) -> Vec<Value> {
    let detail =
        |message: &str, property: &str| json!({ "message": message, "property": property });
    let mut details = Vec::new();
    if body["to"].as_str().is_none_or(str::is_empty) {
        details.push(detail("must be specified", "to"));
    }
    match body["messages"].as_array() {
        None => details.push(detail("must be specified", "messages")),
        Some(messages) if messages.is_empty() || messages.len() > MAX_MESSAGES => {
            details.push(detail("Size must be between 1 and 5", "messages"));
        }
        Some(messages) => {
            for (i, message) in messages.iter().enumerate() {
                details.extend(message_errors(message, &format!("messages[{i}]")));
            }
        }
    }
    details
}

/// What is wrong with one message (only `text` messages are modelled).
fn message_errors(message: &Value, property: &str) -> Option<Value> {
    let detail =
        |message: &str, property: String| json!({ "message": message, "property": property });
    if message["type"].as_str() != Some("text") {
        return Some(detail("must be one of: text", format!("{property}.type")));
    }
    match message["text"].as_str() {
        None | Some("") => Some(detail("must be specified", format!("{property}.text"))),
        Some(text) if text.chars().count() > MAX_TEXT_CHARS => Some(detail(
            "Length must be between 0 and 5000",
            format!("{property}.text"),
        )),
        Some(_) => None,
    }
}

/// One `sentMessages` entry: a numeric id and a quote token.
fn sent_message() -> Value {
    let id: u64 = rand::random::<u64>() % 9_000_000_000_000_000_000 + 100_000_000_000_000_000;
    let token: String = (0..24)
        .map(|_| {
            let chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            char::from(chars[rand::random_range(0..chars.len())])
        })
        .collect();
    json!({ "id": id.to_string(), "quoteToken": token })
}

fn header_value(text: &str) -> header::HeaderValue {
    header::HeaderValue::from_str(text).expect("UUIDs are valid header values")
}
