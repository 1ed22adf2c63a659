//! The follow API: citizens follow bills and choose how to be told when one
//! moves (docs/NOTIFY.md). The hub only stores followers, in the NATS
//! key-value bucket `[follow] bucket`; `sapha notify` reads it and sends.
//!
//! - `GET /v1/push/key`: the VAPID public key browsers subscribe with.
//! - `POST /v1/followers`: a new follower; the answer holds its id and secret.
//! - `GET`, `PATCH`, `DELETE /v1/followers/{id}`; `PUT`, `DELETE
//!   /v1/followers/{id}/bills/{bill}`: with `Authorization: Bearer <secret>`.
//!
//! Every request takes a token from the caller's state API bucket (per IP);
//! creating a follower also counts against `followers_per_ip_per_hour`.

use crate::client_ip::client_ip;
use crate::server::{reject, App};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use dashmap::DashMap;
use futures::future::BoxFuture;
use sapha_follows::{Channel, FollowStore, Follower, InvalidFollow, Lang, StoreError};
use sapha_log::SourceError;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// Where the follow API keeps its followers: the NATS key-value bucket beside
/// the stream ([`crate::nats::NatsSource`]). It is the hub's own trait, not part
/// of [`sapha_log::EventSource`], so that the log traits do not depend on NATS.
/// A hub run without one (`sapha demo`, [`crate::run`]) answers the follow
/// API with 503.
pub(crate) trait FollowBackend: Send + Sync + 'static {
    /// Opens the follow store in bucket `bucket`: an existing one as it is; a
    /// missing one is created with the stream's replicas, or, before the
    /// stream exists, `replicas_without_stream` (0: automatic).
    fn open_follow_store<'a>(
        &'a self,
        bucket: &'a str,
        replicas_without_stream: usize,
    ) -> BoxFuture<'a, Result<FollowStore, SourceError>>;
}

/// The follow API's own state, shared by every request.
#[derive(Default)]
pub(crate) struct FollowApi {
    /// Where the store is opened from; `None`: the API answers 503.
    backend: Option<Box<dyn FollowBackend>>,
    /// Opened on first use (the bucket may be created then).
    store: tokio::sync::OnceCell<FollowStore>,
    /// Followers created per IP in the current hour: (count, hour started).
    created: DashMap<IpAddr, (u32, Instant)>,
}

impl FollowApi {
    pub(crate) fn new(backend: Option<Box<dyn FollowBackend>>) -> FollowApi {
        FollowApi {
            backend,
            ..Default::default()
        }
    }
}

/// The follow API's routes.
pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/v1/push/key", get(push_key))
        .route("/v1/followers", post(create))
        .route("/v1/followers/{id}", get(read).patch(change).delete(remove))
        .route(
            "/v1/followers/{id}/bills/{bill}",
            put(follow_bill).delete(unfollow_bill),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewFollower {
    lang: Lang,
    channel: Channel,
    #[serde(default)]
    bills: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowerChange {
    lang: Option<Lang>,
    channel: Option<Channel>,
}

/// A refusal, as the error body every Sapha API uses (boxed: a response is large).
struct Refused(Box<Response>);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

fn refused(status: StatusCode, code: &str, message: &str) -> Refused {
    Refused(Box::new(reject(status, code, message)))
}

fn bad_parameter(parameter: &str, message: &str) -> Refused {
    let body = serde_json::json!({
        "type": "error", "code": "bad_parameter", "parameter": parameter, "message": message,
    });
    Refused(Box::new(
        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response(),
    ))
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Refused {
        match e {
            StoreError::UnknownFollower => refused(
                StatusCode::NOT_FOUND,
                "unknown_follower",
                "no such follower",
            ),
            StoreError::BadSecret => refused(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the secret does not match this follower",
            ),
            StoreError::Invalid(e) => bad_parameter(e.field(), &e.to_string()),
            StoreError::Conflict => refused(StatusCode::CONFLICT, "conflict", &e.to_string()),
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "follow store unavailable");
                refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "follow_store_unavailable",
                    "the follow store cannot be reached; try again shortly",
                )
            }
        }
    }
}

type Answer = Result<Response, Refused>;

impl App {
    /// The checks every follow request passes: the API is on, the caller's
    /// rate, and the store is open.
    async fn follow_store(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
    ) -> Result<FollowStore, Refused> {
        let config = &self.hub.config.follow;
        if !config.enabled {
            return Err(notifications_off());
        }
        let ip = client_ip(peer.ip(), headers, &self.hub.config.proxy.trusted);
        if !self.is_trusted_proxy(peer.ip()) && !self.state_rate_ok(ip) {
            return Err(refused(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this address; slow down",
            ));
        }
        let store = self
            .follows
            .store
            .get_or_try_init(|| async {
                let Some(backend) = &self.follows.backend else {
                    return Err(None);
                };
                match backend
                    .open_follow_store(&config.bucket, config.replicas)
                    .await
                {
                    Ok(store) => Ok(store),
                    Err(e) => Err(Some(e.to_string())),
                }
            })
            .await;
        match store {
            Ok(store) => Ok(store.clone()),
            Err(None) => Err(notifications_off()),
            Err(Some(reason)) => Err(StoreError::Unavailable(reason).into()),
        }
    }

    /// Counts a new follower against its IP's hourly allowance.
    fn may_create(&self, peer: SocketAddr, headers: &HeaderMap) -> bool {
        if self.is_trusted_proxy(peer.ip()) {
            return true;
        }
        let ip = client_ip(peer.ip(), headers, &self.hub.config.proxy.trusted);
        let now = Instant::now();
        let allowance = self.hub.config.follow.followers_per_ip_per_hour;
        if self.follows.created.len() > 10_000 {
            self.follows
                .created
                .retain(|_, (_, since)| now.duration_since(*since) < HOUR);
        }
        let mut entry = self.follows.created.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= HOUR {
            *entry = (0, now);
        }
        if entry.0 >= allowance {
            return false;
        }
        entry.0 += 1;
        true
    }
}

fn notifications_off() -> Refused {
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "notifications_off",
        "this hub does not take followers (no notifier is set up)",
    )
}

/// The follower's secret from `Authorization: Bearer <secret>`.
fn secret(headers: &HeaderMap) -> Result<String, Refused> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            let mut r = reject(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send the follower's secret as Authorization: Bearer <secret>",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            Refused(Box::new(r))
        })
}

/// Reads a JSON body of at most `[follow] max_body_bytes`.
async fn json_body<T: serde::de::DeserializeOwned>(app: &App, body: Body) -> Result<T, Refused> {
    let limit = app.hub.config.follow.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("the request body is larger than {limit} bytes"),
        )
    })?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let parameter = if path == "." { "body" } else { path.as_str() };
        bad_parameter(parameter, &e.inner().to_string())
    })
}

fn public(follower: &Follower) -> serde_json::Value {
    serde_json::json!({
        "id": follower.id,
        "lang": follower.lang,
        "channel": follower.channel.kind(),
        "bills": follower.bills,
        "created_at": follower.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

fn ok(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

async fn push_key(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Answer {
    let store = app.follow_store(peer, &headers).await?;
    match store.vapid_public_key().await? {
        Some(key) => Ok(ok(
            StatusCode::OK,
            serde_json::json!({ "vapid_public_key": key }),
        )),
        None => Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "notifications_off",
            "no notifier has published its Web Push key yet",
        )),
    }
}

async fn create(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let store = app.follow_store(peer, &headers).await?;
    let new: NewFollower = json_body(&app, body).await?;
    let limits = app.hub.config.follow.limits();
    // Bad input does not count against the address's allowance.
    sapha_follows::check_channel(&new.channel, &limits).map_err(StoreError::from)?;
    sapha_follows::check_bills(&new.bills, &limits).map_err(StoreError::from)?;
    if !app.may_create(peer, &headers) {
        return Err(refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_followers_from_ip",
            "this address created too many followers this hour",
        ));
    }
    let (follower, secret) = store
        .create(new.lang, new.channel, &new.bills, &limits)
        .await?;
    let mut body = public(&follower);
    body["secret"] = secret.into();
    Ok(ok(StatusCode::CREATED, body))
}

async fn read(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let store = app.follow_store(peer, &headers).await?;
    let follower = store.authorize(&id, &secret(&headers)?).await?;
    Ok(ok(StatusCode::OK, public(&follower)))
}

async fn change(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let store = app.follow_store(peer, &headers).await?;
    let secret = secret(&headers)?;
    let change: FollowerChange = json_body(&app, body).await?;
    let limits = app.hub.config.follow.limits();
    let follower = store
        .update(&id, &secret, &limits, |f| {
            if let Some(lang) = change.lang {
                f.lang = lang;
            }
            if let Some(channel) = &change.channel {
                f.channel = channel.clone();
            }
            Ok(())
        })
        .await?;
    Ok(ok(StatusCode::OK, public(&follower)))
}

async fn remove(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let store = app.follow_store(peer, &headers).await?;
    store.delete(&id, &secret(&headers)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn follow_bill(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((id, bill)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    edit_bills(app, peer, id, headers, move |bills: &mut Vec<String>| {
        sapha_follows::check_bill(&bill)?;
        if !bills.contains(&bill) {
            bills.push(bill.clone());
        }
        Ok(())
    })
    .await
}

async fn unfollow_bill(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((id, bill)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    edit_bills(app, peer, id, headers, move |bills: &mut Vec<String>| {
        bills.retain(|b| *b != bill);
        Ok(())
    })
    .await
}

async fn edit_bills(
    app: App,
    peer: SocketAddr,
    id: String,
    headers: HeaderMap,
    edit: impl Fn(&mut Vec<String>) -> Result<(), InvalidFollow>,
) -> Answer {
    let store = app.follow_store(peer, &headers).await?;
    let secret = secret(&headers)?;
    let limits = app.hub.config.follow.limits();
    let follower = store
        .update(&id, &secret, &limits, |f| edit(&mut f.bills))
        .await?;
    Ok(ok(
        StatusCode::OK,
        serde_json::json!({ "bills": follower.bills }),
    ))
}
