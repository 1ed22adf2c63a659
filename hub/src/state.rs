//! The state side: the projection of the stream (`sapha_proto::projection`)
//! kept in memory, what is true now, at the stream position it reflects.
//!
//! - The fan-out's one consumer hands each event, right after it fans it out
//!   (`consumer`), to the state's own thread, which applies it once, in stream
//!   order. The state never re-reads the stream per request, a long request
//!   never holds up the fan-out, and its `seq` is a position a client can resume
//!   from: read the state at `seq`, subscribe with `since=seq`, and nothing is
//!   missed or seen twice.
//! - At start, the hub loads the newest snapshot from NATS (an object store
//!   bucket replicated like the stream), then replays the stream after it; a
//!   missing, corrupt or foreign (other epoch) snapshot means a full replay.
//!   Snapshots are written every `state.snapshot_interval_ms` and at shutdown.
//! - The HTTP answers (`GET /v1/bills`, `/v1/sittings`...) are built here;
//!   `server` wires them to routes, auth and rate limits. See docs/STATE.md.

use crate::hub::DynSource;
use crate::search;
use base64::Engine as _;
use bytes::Bytes;
use chrono::NaiveDate;
use futures::StreamExt;
use sapha_log::{SourceError, StreamBounds};
use sapha_proto::event::Chamber;
use sapha_proto::projection::{BillState, Projection, SittingState, SittingStatus};
use sapha_proto::stage::{BillType, Proposer, Stage};
use sapha_proto::Event;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// The paths whose cursors are bound to them.
const BILLS: &str = "/v1/bills";
const SITTINGS: &str = "/v1/sittings";

/// The snapshot format this hub writes and reads.
const SNAPSHOT_FORMAT: u32 = 1;
/// How long the start-up replay waits for a next message before it takes the
/// stream as read (the last messages may have been deleted).
const REPLAY_STALL: Duration = Duration::from_secs(5);
/// The most items one page may hold.
pub(crate) const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;

/// A snapshot as stored in NATS.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    format: u32,
    epoch: String,
    projection: Projection,
}

/// How the state was built at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BuildReport {
    /// The position of the snapshot loaded, if one was.
    pub(crate) snapshot_seq: Option<u64>,
    /// Events replayed after it.
    pub(crate) replayed: u64,
}

/// The projection, with what the hub needs around it.
#[derive(Default)]
pub(crate) struct StateStore {
    projection: RwLock<Projection>,
    epoch: RwLock<String>,
    ready: AtomicBool,
    /// The position of the last snapshot written (or loaded).
    snapshot_seq: AtomicU64,
    /// Each bill's titles, normalized for search (Thai, English), so that a
    /// search scans prepared strings instead of normalizing 20,000 titles.
    titles: RwLock<HashMap<String, (sapha_proto::event::Text, [String; 2])>>,
    /// Bumped when the stream is forgotten ([`StateStore::forget`]): events
    /// queued for an older generation are of the old stream and are dropped.
    generation: AtomicU64,
    /// The state thread's queue (see [`StateStore::enqueue`]): generation,
    /// position, event.
    queue: std::sync::OnceLock<std::sync::mpsc::Sender<Queued>>,
    /// This store, for the state thread.
    me: std::sync::OnceLock<std::sync::Weak<StateStore>>,
    /// `state.cursor_secret`, when set: part of the cursors' MAC key.
    cursor_secret: std::sync::OnceLock<Vec<u8>>,
}

/// One item of the state thread's queue: generation, position, event.
type Queued = (u64, u64, Option<Event>);

/// A bill's titles as search compares them.
fn search_titles(title: &sapha_proto::event::Text) -> [String; 2] {
    [search::title_key(&title.th), search::title_key(&title.en)]
}

impl StateStore {
    fn read(&self) -> RwLockReadGuard<'_, Projection> {
        // A panic while applying cannot leave a half-applied event worse than
        // dropping every later answer: keep serving.
        self.projection.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Projection> {
        self.projection.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the start-up build is done (before it, answers are 503).
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// A store that can run its own applying thread ([`StateStore::enqueue`]).
    pub(crate) fn shared() -> Arc<StateStore> {
        let store = Arc::new(StateStore::default());
        let _ = store.me.set(Arc::downgrade(&store));
        store
    }

    /// Marks the state built without a start-up replay (benchmarks).
    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether bill `id` is in the state (`None` before the start-up build is
    /// done): the follow API refuses to follow a bill it does not know.
    pub(crate) fn has_bill(&self, id: &str) -> Option<bool> {
        self.is_ready().then(|| self.read().bills.contains_key(id))
    }

    /// The position the state reflects.
    pub(crate) fn seq(&self) -> u64 {
        self.read().seq
    }

    /// Hands the event at `seq` to the state's own thread, which applies it in
    /// order: a long state request holding the read lock then never delays the
    /// fan-out. The state's `seq` trails the fan-out by the events in flight.
    pub(crate) fn enqueue(&self, seq: u64, event: Option<Event>) {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<Queued>();
            // A weak reference: when the hub drops the store, the queue's
            // sender goes with it and the thread ends.
            let me = self.me.get().cloned().unwrap_or_default();
            std::thread::Builder::new()
                .name("sapha-state".into())
                .spawn(move || {
                    // Wake at most about a thousand times a second, and apply
                    // what came meanwhile under one lock: a wake-up per event
                    // costs the fan-out's CPU more than the applying does.
                    while let Ok(first) = rx.recv() {
                        let mut batch = vec![first];
                        batch.extend(rx.try_iter());
                        let Some(store) = me.upgrade() else { return };
                        store.apply_batch(&batch);
                        drop(store);
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                })
                .expect("the state thread starts");
            tx
        });
        let generation = self.generation.load(Ordering::Acquire);
        let _ = queue.send((generation, seq, event));
    }

    /// Applies events (or bare positions) in order, under one lock; those of
    /// a forgotten stream (an older generation) are dropped.
    fn apply_batch(&self, batch: &[Queued]) {
        let mut applied = Vec::with_capacity(batch.len());
        {
            let mut projection = self.write();
            let current = self.generation.load(Ordering::Acquire);
            for (generation, seq, event) in batch {
                if *generation != current {
                    continue;
                }
                match event {
                    Some(e) => {
                        projection.apply(*seq, e);
                        applied.push(e);
                    }
                    None => projection.advance(*seq),
                }
            }
        }
        for event in applied {
            self.prepare_title(event);
        }
    }

    /// Sets the epoch of a stream that did not exist when the state was built.
    pub(crate) fn set_epoch(&self, epoch: &str) {
        *self.epoch.write().unwrap_or_else(|e| e.into_inner()) = epoch.to_owned();
    }

    /// Forgets a stream that was recreated: answers are 503 until the next
    /// [`StateStore::build`], and events still queued for it are dropped.
    pub(crate) fn forget(&self) {
        let _projection = self.write();
        self.ready.store(false, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.snapshot_seq.store(0, Ordering::Relaxed);
    }

    /// Applies the event at stream position `seq` (once; older positions are ignored).
    pub(crate) fn apply(&self, seq: u64, event: &Event) {
        self.write().apply(seq, event);
        self.prepare_title(event);
    }

    /// Keeps a bill's titles normalized for search.
    fn prepare_title(&self, event: &Event) {
        if let sapha_proto::Body::BillStageChanged(b) = &event.body {
            // Titles rarely change: normalize only a new one.
            let known = self
                .titles
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&b.bill_id)
                .is_some_and(|(raw, _)| *raw == b.title);
            if !known {
                let prepared = (b.title.clone(), search_titles(&b.title));
                self.titles
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(b.bill_id.clone(), prepared);
            }
        }
    }

    #[cfg(test)]
    /// Moves the position past a message that is not an event.
    pub(crate) fn advance(&self, seq: u64) {
        self.write().advance(seq);
    }

    /// Builds the state up to `bounds.last`: the newest snapshot of this
    /// stream's epoch, then the stream after it.
    pub(crate) async fn build(
        &self,
        source: &dyn DynSource,
        bounds: &StreamBounds,
    ) -> Result<BuildReport, SourceError> {
        *self.epoch.write().unwrap_or_else(|e| e.into_inner()) = bounds.epoch.clone();
        let mut report = BuildReport {
            snapshot_seq: None,
            replayed: 0,
        };
        let mut projection = Projection::default();
        match source.load_snapshot().await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Snapshot>(&bytes) {
                Ok(s)
                    if s.format == SNAPSHOT_FORMAT
                        && s.epoch == bounds.epoch
                        && s.projection.seq <= bounds.last =>
                {
                    projection = s.projection;
                    projection.restore();
                    report.snapshot_seq = Some(projection.seq);
                    self.snapshot_seq.store(projection.seq, Ordering::Relaxed);
                }
                Ok(s) => tracing::warn!(
                    snapshot_seq = s.projection.seq,
                    snapshot_epoch = %s.epoch,
                    epoch = %bounds.epoch,
                    last = bounds.last,
                    "the state snapshot is of another stream; replaying it all"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "the state snapshot is corrupt; replaying it all")
                }
            },
            Ok(None) => tracing::info!("no state snapshot yet; replaying the stream"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the state snapshot; replaying the stream")
            }
        }
        if projection.seq < bounds.last {
            let mut stream = source.read_from(projection.seq + 1).await?;
            loop {
                match tokio::time::timeout(REPLAY_STALL, stream.next()).await {
                    Ok(Some(Ok(msg))) => {
                        if msg.seq > bounds.last {
                            break;
                        }
                        match Event::decode_proto(&msg.payload) {
                            Ok(event) => projection.apply(msg.seq, &event),
                            Err(_) => projection.advance(msg.seq),
                        }
                        report.replayed += 1;
                        if msg.seq == bounds.last {
                            break;
                        }
                    }
                    Ok(Some(Err(e))) => return Err(e),
                    Ok(None) | Err(_) => break,
                }
            }
            projection.advance(bounds.last);
        }
        *self.titles.write().unwrap_or_else(|e| e.into_inner()) = projection
            .bills
            .values()
            .map(|b| {
                (
                    b.bill_id.clone(),
                    (b.title.clone(), search_titles(&b.title)),
                )
            })
            .collect();
        *self.write() = projection;
        self.ready.store(true, Ordering::Release);
        Ok(report)
    }

    /// Writes a snapshot if the state moved since the last one. Returns the
    /// position written, if any.
    pub(crate) async fn save(&self, source: &dyn DynSource) -> Result<Option<u64>, SourceError> {
        if !self.is_ready() {
            return Ok(None);
        }
        let (seq, bytes) = {
            let projection = self.read();
            if projection.seq <= self.snapshot_seq.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let snapshot = SnapshotRef {
                format: SNAPSHOT_FORMAT,
                epoch: &self.epoch.read().unwrap_or_else(|e| e.into_inner()),
                projection: &projection,
            };
            let bytes = serde_json::to_vec(&snapshot).expect("the projection serializes");
            (projection.seq, Bytes::from(bytes))
        };
        source.store_snapshot(bytes).await?;
        self.snapshot_seq.store(seq, Ordering::Relaxed);
        Ok(Some(seq))
    }

    /// The position of the last snapshot written or loaded.
    pub(crate) fn snapshot_seq(&self) -> u64 {
        self.snapshot_seq.load(Ordering::Relaxed)
    }
}

/// [`Snapshot`] by reference, so writing one does not copy the projection.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: u32,
    epoch: &'a str,
    projection: &'a Projection,
}

/// An answer of the state API, before it becomes an HTTP response.
#[derive(Debug)]
pub(crate) enum Answer {
    Ok { body: Value, etag: String },
    NotModified { etag: String },
    NotFound(String),
    BadParameter { parameter: String, message: String },
    NotReady,
}

/// Who may see what: the topics a client's token grants.
pub(crate) trait Visibility {
    fn sees(&self, topic: &str) -> bool;
    /// True when every topic is granted (skips the per-item checks).
    fn sees_all(&self) -> bool {
        false
    }
}

/// The `ETag` of an answer: the stream's epoch and position, and `variant`,
/// which names the representation (the URL and the caller's grant; see
/// `server`), so that a tag never matches another URL's answer.
fn etag(epoch: &str, seq: u64, variant: &str) -> String {
    format!("\"{epoch}-{seq}-{variant}\"")
}

/// What a conditional request sent, and what names its representation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Conditional<'a> {
    /// The `If-None-Match` header.
    pub(crate) if_none_match: Option<&'a str>,
    /// The representation's part of the tag.
    pub(crate) variant: &'a str,
}

/// Whether an `If-None-Match` value matches `tag` (RFC 9110 §13.1.2): `*`,
/// or a list of entity tags compared weakly (`W/"x"` matches `"x"`).
pub(crate) fn none_match(header: &str, tag: &str) -> bool {
    let opaque = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_owned();
    let want = opaque(tag);
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        if rest.starts_with('*') {
            return true;
        }
        let weak = rest.starts_with("W/");
        let body = if weak { &rest[2..] } else { rest };
        let Some(inner) = body.strip_prefix('"') else {
            return false; // not an entity tag: nothing matches
        };
        let Some(end) = inner.find('"') else {
            return false;
        };
        if format!("\"{}\"", &inner[..end]) == want {
            return true;
        }
        rest = &inner[end + 1..];
    }
    false
}

fn bad(parameter: &str, message: impl Into<String>) -> Answer {
    Answer::BadParameter {
        parameter: parameter.to_owned(),
        message: message.into(),
    }
}

/// A state API request's query string, decoded: every `key=value` pair as
/// sent, in order. Form encoding: `+` is a space, then percent-decoding,
/// whose bytes must be UTF-8 (anything else is 400, never replaced).
#[derive(Debug, Clone, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

/// The parameters that take a list: repeated keys (`stage=A&stage=B`,
/// OpenAPI's default `style: form, explode: true`) and comma-separated values
/// (`stage=A,B`) both, and any mix. Every other parameter takes one value and
/// refuses a repeat.
const LIST_PARAMETERS: &[&str] = &[
    "stage",
    "type",
    "chamber",
    "proposer",
    "introducer",
    "status",
];

impl Params {
    /// Decodes a raw query string (`None`: no `?`).
    pub(crate) fn parse(raw: Option<&str>) -> Result<Params, Answer> {
        let mut pairs = Vec::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(k).map_err(|_| {
                bad(
                    "query",
                    "query: a parameter name is not UTF-8 once percent-decoded",
                )
            })?;
            let value = decode(v).map_err(|_| {
                bad(
                    &key,
                    format!(
                        "{key}: not UTF-8 once percent-decoded; encode the text as UTF-8, \
                         then percent-encode its bytes (ภาษี is %E0%B8%A0%E0%B8%B2%E0%B8%A9%E0%B8%B5)"
                    ),
                )
            })?;
            pairs.push((key, value));
        }
        Ok(Params { pairs })
    }

    /// Pairs already decoded (tests and benchmarks).
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Params {
        Params {
            pairs: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Refuses a parameter not in `known` (400, `parameter: query`).
    fn only(&self, known: &[&str], path: &str) -> Result<(), Answer> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((unknown, _)) => Err(bad(
                "query",
                format!("{unknown}: not a parameter of {path} (see docs/STATE.md)"),
            )),
            None => Ok(()),
        }
    }

    /// The value of a single-valued parameter; given more than once, 400
    /// naming it (a repeat is never dropped silently).
    pub(crate) fn one(&self, name: &str) -> Result<Option<&str>, Answer> {
        debug_assert!(!LIST_PARAMETERS.contains(&name));
        let mut values = self.pairs.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        let more = values.count();
        if more > 0 {
            return Err(bad(
                name,
                format!("{name}: given {} times; it takes one value", more + 1),
            ));
        }
        Ok(first)
    }

    /// Every value of a list parameter, from repeated keys and commas alike.
    fn list(&self, name: &str) -> Option<Vec<&str>> {
        debug_assert!(LIST_PARAMETERS.contains(&name));
        let values: Vec<&str> = self
            .pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .collect();
        (!values.is_empty()).then_some(values)
    }

    /// Takes `token=` out (it is a credential, not a filter); refuses a repeat.
    pub(crate) fn take_token(&mut self) -> Result<Option<String>, Answer> {
        let token = self.one("token")?.map(str::to_owned);
        self.pairs.retain(|(k, _)| k != "token");
        Ok(token)
    }

    /// The query a cursor is bound to: every parameter but `cursor` and
    /// `limit` (a page size may change between pages), in a canonical order.
    fn binding(&self) -> String {
        let mut pairs: Vec<&(String, String)> = self
            .pairs
            .iter()
            .filter(|(k, _)| k != "cursor" && k != "limit")
            .collect();
        pairs.sort();
        pairs
            .iter()
            .map(|(k, v)| format!("{}:{k}{}:{v}", k.len(), v.len()))
            .collect::<String>()
    }
}

/// Form-decodes one key or value: `+` is a space, then percent-decoding,
/// which must give UTF-8.
fn decode(raw: &str) -> Result<String, std::str::Utf8Error> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|c| c.into_owned())
}

/// Parses the values of a list parameter as codes.
fn codes<T: std::str::FromStr>(params: &Params, name: &str) -> Result<Option<Vec<T>>, Answer> {
    let Some(values) = params.list(name) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|code| {
            code.parse::<T>()
                .map_err(|_| bad(name, format!("{name}: unknown code '{code}'")))
        })
        .collect::<Result<Vec<T>, Answer>>()
        .map(Some)
}

/// A date parameter: exactly `YYYY-MM-DD` (RFC 3339 full-date, a 4-digit
/// Common Era year); a year past 2400 is taken for a Buddhist-era one.
fn date(params: &Params, name: &str) -> Result<Option<NaiveDate>, Answer> {
    let Some(d) = params.one(name)? else {
        return Ok(None);
    };
    let shape_ok = d.len() == 10
        && d.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let parsed = shape_ok
        .then(|| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .flatten();
    let Some(day) = parsed else {
        return Err(bad(
            name,
            format!("{name}: '{d}' is not a date (YYYY-MM-DD, a 4-digit year: 2024-12-04)"),
        ));
    };
    if chrono::Datelike::year(&day) > 2400 {
        let ce = chrono::Datelike::with_year(&day, chrono::Datelike::year(&day) - 543)
            .map(|c| c.to_string())
            .unwrap_or_default();
        return Err(bad(
            name,
            format!(
                "{name}: '{d}' looks like a Buddhist-era year (พ.ศ.); the API takes Common Era \
                 dates: subtract 543 ({ce})"
            ),
        ));
    }
    Ok(Some(day))
}

fn limit(params: &Params) -> Result<usize, Answer> {
    match params.one("limit")? {
        None => Ok(DEFAULT_PAGE),
        Some(l) => match l
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| l.parse::<usize>().ok())
            .flatten()
        {
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(bad(
                "limit",
                format!("limit: a number from 1 to {MAX_PAGE}, digits only"),
            )),
        },
    }
}

/// The bytes of a cursor's MAC kept in the cursor.
const CURSOR_MAC_BYTES: usize = 16;

impl StateStore {
    /// Keys cursors with a secret shared by every hub (`state.cursor_secret`).
    pub(crate) fn set_cursor_secret(&self, secret: &[u8]) {
        let _ = self.cursor_secret.set(secret.to_vec());
    }

    /// The MAC of a cursor's `payload` for the query `params` of `path`:
    /// HMAC-SHA256 keyed with the stream's epoch (and `state.cursor_secret`
    /// when set), so a cursor is refused with another query, another sort,
    /// after an edit, and across a recreated stream.
    fn cursor_mac(&self, path: &str, params: &Params, payload: &str) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let epoch = self.epoch.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut key = self.cursor_secret.get().cloned().unwrap_or_default();
        key.extend_from_slice(b"\0sapha-cursor\0");
        key.extend_from_slice(epoch.as_bytes());
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
        for part in [path, &params.binding(), payload] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// A cursor for the page after the item `(key, id)` of this query.
    fn make_cursor(&self, path: &str, params: &Params, key: i64, id: &str) -> String {
        use hmac::Mac;
        let payload = format!("{key}.{id}");
        let tag = self
            .cursor_mac(path, params, &payload)
            .finalize()
            .into_bytes();
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}",
            b64.encode(&payload),
            b64.encode(&tag[..CURSOR_MAC_BYTES])
        )
    }

    /// A page position: the sort key and id of the last item of the page
    /// before, from a cursor this API gave out for this very query.
    fn cursor(&self, path: &str, params: &Params) -> Result<Option<(i64, String)>, Answer> {
        use hmac::Mac;
        let Some(raw) = params.one("cursor")? else {
            return Ok(None);
        };
        let invalid = || {
            bad(
                "cursor",
                "cursor: not a cursor this API gave out for this query (a cursor works only \
                 with the parameters and sort of the page it came from; start again without it)",
            )
        };
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (payload, tag) = raw.split_once('.').ok_or_else(invalid)?;
        let payload = String::from_utf8(b64.decode(payload).map_err(|_| invalid())?)
            .map_err(|_| invalid())?;
        let tag = b64.decode(tag).map_err(|_| invalid())?;
        self.cursor_mac(path, params, &payload)
            .verify_truncated_left(&tag)
            .map_err(|_| invalid())?;
        if tag.len() != CURSOR_MAC_BYTES {
            return Err(invalid());
        }
        let (key, id) = payload.split_once('.').ok_or_else(invalid)?;
        Ok(Some((key.parse().map_err(|_| invalid())?, id.to_owned())))
    }
}

/// Keeps the page after `after` of items sorted by (key, id); with the
/// position of its last item when more follow.
fn page<T>(
    mut items: Vec<(i64, String, T)>,
    after: Option<(i64, String)>,
    limit: usize,
) -> (usize, Vec<T>, Option<(i64, String)>) {
    items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let total = items.len();
    let start = after.map_or(0, |(k, id)| {
        items.partition_point(|x| (x.0, &x.1) <= (k, &id))
    });
    let rest: Vec<_> = items.into_iter().skip(start).collect();
    let next = (rest.len() > limit).then(|| (rest[limit - 1].0, rest[limit - 1].1.clone()));
    (
        total,
        rest.into_iter().take(limit).map(|x| x.2).collect(),
        next,
    )
}

fn labels(stage: Stage) -> Value {
    let (th, en) = stage.label();
    json!({ "th": th, "en": en })
}

/// A bill in a list.
fn bill_summary(b: &BillState, matched: Option<Value>) -> Value {
    let mut v = json!({
        "bill_id": b.bill_id,
        "bill_type": b.bill_type,
        "title": b.title,
        "stage": b.stage,
        "stage_label": labels(b.stage),
        "since": b.since,
        "seq": b.seq,
    });
    let o = v.as_object_mut().expect("an object");
    if let Some(c) = b.stage.chamber() {
        o.insert("chamber".into(), json!(c));
    }
    if let Some(p) = b.proposer {
        o.insert("proposer".into(), json!(p));
    }
    if let Some(d) = b.deadline {
        o.insert("deadline".into(), json!(d));
    }
    if b.money_bill {
        o.insert("money_bill".into(), json!(true));
    }
    if let Some(m) = matched {
        o.insert("match".into(), m);
    }
    v
}

/// Ranks a title match: an earlier match first, a match at the start best.
fn score(start: usize, title_len: usize) -> i64 {
    let at_start = if start == 0 { 1_000_000 } else { 0 };
    at_start + 100_000 - start.min(99_999) as i64 - (title_len as i64 / 100)
}

impl StateStore {
    /// The projection to answer from, the answer's tag, and whether the
    /// request's `If-None-Match` matches it (a list answers 304 at once; a
    /// lookup only once it found what it names).
    fn guard(
        &self,
        cond: Conditional<'_>,
    ) -> Result<(RwLockReadGuard<'_, Projection>, String, bool), Answer> {
        if !self.is_ready() {
            return Err(Answer::NotReady);
        }
        let projection = self.read();
        let tag = etag(
            &self.epoch.read().unwrap_or_else(|e| e.into_inner()),
            projection.seq,
            cond.variant,
        );
        let matched = cond.if_none_match.is_some_and(|m| none_match(m, &tag));
        Ok((projection, tag, matched))
    }

    /// `GET /v1/bills`.
    pub(crate) fn bills(
        &self,
        params: &Params,
        who: &dyn Visibility,
        cond: Conditional<'_>,
    ) -> Answer {
        match self.bills_inner(params, who, cond) {
            Ok(a) | Err(a) => a,
        }
    }

    fn bills_inner(
        &self,
        params: &Params,
        who: &dyn Visibility,
        cond: Conditional<'_>,
    ) -> Result<Answer, Answer> {
        const KNOWN: &[&str] = &[
            "stage",
            "type",
            "chamber",
            "proposer",
            "introducer",
            "moved_since",
            "moved_on",
            "q",
            "sort",
            "limit",
            "cursor",
        ];
        params.only(KNOWN, BILLS)?;
        let stages: Option<Vec<Stage>> = codes(params, "stage")?;
        let types: Option<Vec<BillType>> = codes(params, "type")?;
        let chambers: Option<Vec<Chamber>> = codes(params, "chamber")?;
        // `introducer` is another name for `proposer`: both count.
        let proposers: Option<Vec<Proposer>> =
            match (codes(params, "proposer")?, codes(params, "introducer")?) {
                (Some(mut p), Some(i)) => {
                    p.extend(i);
                    Some(p)
                }
                (p, i) => p.or(i),
            };
        let moved_since = date(params, "moved_since")?;
        let moved_on = date(params, "moved_on")?;
        let query = params
            .one("q")?
            .map(|q| (search::normalize(q), search::normalized(q)));
        if query.as_ref().is_some_and(|(q, _)| q.chars.is_empty()) {
            return Err(bad("q", "q: is empty"));
        }
        let sort = params.one("sort")?.unwrap_or(if query.is_some() {
            "relevance"
        } else {
            "moved_desc"
        });
        if !["relevance", "moved_desc", "moved_asc", "id"].contains(&sort) {
            return Err(bad(
                "sort",
                format!("sort: '{sort}' is not relevance, moved_desc, moved_asc or id"),
            ));
        }
        if sort == "relevance" && query.is_none() {
            return Err(bad("sort", "sort: relevance needs q"));
        }
        let limit = limit(params)?;
        let after = self.cursor(BILLS, params)?;
        let (projection, tag, matched) = self.guard(cond)?;
        if matched {
            return Ok(Answer::NotModified { etag: tag });
        }
        let titles = self.titles.read().unwrap_or_else(|e| e.into_inner());
        let mut items = Vec::new();
        let all = who.sees_all();
        for b in projection.bills.values() {
            if !(all || who.sees(&format!("bill.{}.stage", b.bill_id)))
                || stages.as_ref().is_some_and(|s| !s.contains(&b.stage))
                || types.as_ref().is_some_and(|t| !t.contains(&b.bill_type))
                || chambers
                    .as_ref()
                    .is_some_and(|c| !b.stage.chamber().is_some_and(|x| c.contains(&x)))
                || proposers
                    .as_ref()
                    .is_some_and(|p| !b.proposer.is_some_and(|x| p.contains(&x)))
                || moved_since.is_some_and(|d| b.moved_on() < d)
                || moved_on.is_some_and(|d| !b.moved_on_day(d))
            {
                continue;
            }
            let mut relevance = 0;
            if let Some((_, q)) = &query {
                // The prepared titles (a bill just applied may not have them yet).
                let prepared;
                let [th, en] = match titles.get(&b.bill_id) {
                    Some((_, t)) => t,
                    None => {
                        prepared = search_titles(&b.title);
                        &prepared
                    }
                };
                let Some((at, len)) = th
                    .find(q.as_str())
                    .map(|at| (at, th.len()))
                    .or_else(|| en.find(q.as_str()).map(|at| (at, en.len())))
                else {
                    continue;
                };
                relevance = score(at, len);
            }
            let since_ms = b.since.timestamp_millis();
            let key = match sort {
                "relevance" => -relevance,
                "moved_desc" => -since_ms,
                "moved_asc" => since_ms,
                _ => 0,
            };
            items.push((key, b.bill_id.clone(), b));
        }
        drop(titles);
        let (total, page, next) = page(items, after, limit);
        let next = next.map(|(key, id)| self.make_cursor(BILLS, params, key, &id));
        // The match is marked on the title as written, for this page only.
        let page: Vec<Value> = page
            .into_iter()
            .map(|b| {
                let matched = query.as_ref().and_then(|(q, _)| {
                    let th = search::find(q, &b.title.th).map(|m| ("title.th", &b.title.th, m));
                    let (field, text, (start, end)) = th.or_else(|| {
                        search::find(q, &b.title.en).map(|m| ("title.en", &b.title.en, m))
                    })?;
                    Some(json!({
                        "field": field,
                        "start": start,
                        "end": end,
                        "text": text.chars().skip(start).take(end - start).collect::<String>(),
                    }))
                });
                bill_summary(b, matched)
            })
            .collect();
        Ok(Answer::Ok {
            body: json!({ "seq": projection.seq, "total": total, "items": page, "next_cursor": next }),
            etag: tag,
        })
    }

    /// `GET /v1/bills/{id}`.
    pub(crate) fn bill(&self, id: &str, who: &dyn Visibility, cond: Conditional<'_>) -> Answer {
        let (projection, tag, matched) = match self.guard(cond) {
            Ok(x) => x,
            Err(a) => return a,
        };
        let Some(b) = projection
            .bills
            .get(id)
            .filter(|_| who.sees(&format!("bill.{id}.stage")))
        else {
            return Answer::NotFound(format!("no bill '{id}'"));
        };
        if matched {
            return Answer::NotModified { etag: tag };
        }
        let mut body = serde_json::to_value(b).expect("a bill serializes");
        let o = body.as_object_mut().expect("an object");
        o.insert("stage_label".into(), labels(b.stage));
        if let Some(c) = b.stage.chamber() {
            o.insert("chamber".into(), json!(c));
        }
        o.insert("state_seq".into(), json!(projection.seq));
        Answer::Ok {
            body: json!({ "seq": projection.seq, "bill": body }),
            etag: tag,
        }
    }

    /// `GET /v1/sittings`.
    pub(crate) fn sittings(
        &self,
        params: &Params,
        who: &dyn Visibility,
        cond: Conditional<'_>,
    ) -> Answer {
        let run = || -> Result<Answer, Answer> {
            const KNOWN: &[&str] = &["from", "to", "chamber", "status", "limit", "cursor"];
            params.only(KNOWN, SITTINGS)?;
            let from = date(params, "from")?;
            let to = date(params, "to")?;
            if let (Some(f), Some(t)) = (from, to) {
                if f > t {
                    return Err(bad("to", "to: before from"));
                }
            }
            let chambers: Option<Vec<Chamber>> = codes(params, "chamber")?;
            let statuses = match params.list("status") {
                None => None,
                Some(values) => Some(
                    values
                        .into_iter()
                        .map(|s| {
                            serde_json::from_value::<SittingStatus>(json!(s))
                                .map_err(|_| bad("status", format!("status: unknown code '{s}'")))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let limit = limit(params)?;
            let after = self.cursor(SITTINGS, params)?;
            let (projection, tag, matched) = self.guard(cond)?;
            if matched {
                return Ok(Answer::NotModified { etag: tag });
            }
            let items: Vec<_> = projection
                .sittings
                .values()
                .filter(|s| {
                    who.sees(&sitting_topic(s))
                        && from.is_none_or(|f| s.day >= f)
                        && to.is_none_or(|t| s.day <= t)
                        && chambers.as_ref().is_none_or(|c| c.contains(&s.chamber))
                        && statuses.as_ref().is_none_or(|st| st.contains(&s.status))
                })
                .map(|s| (day_key(s.day), s.sitting_id.clone(), s))
                .collect();
            let (total, page, next) = page(items, after, limit);
            let next = next.map(|(key, id)| self.make_cursor(SITTINGS, params, key, &id));
            let page: Vec<Value> = page.into_iter().map(sitting_summary).collect();
            Ok(Answer::Ok {
                body: json!({ "seq": projection.seq, "total": total, "items": page, "next_cursor": next }),
                etag: tag,
            })
        };
        match run() {
            Ok(a) | Err(a) => a,
        }
    }

    /// `GET /v1/sittings/{id}`.
    pub(crate) fn sitting(&self, id: &str, who: &dyn Visibility, cond: Conditional<'_>) -> Answer {
        let (projection, tag, matched) = match self.guard(cond) {
            Ok(x) => x,
            Err(a) => return a,
        };
        match projection
            .sittings
            .get(id)
            .filter(|s| who.sees(&sitting_topic(s)))
        {
            Some(_) if matched => Answer::NotModified { etag: tag },
            Some(s) => Answer::Ok {
                body: json!({ "seq": projection.seq, "sitting": s }),
                etag: tag,
            },
            None => Answer::NotFound(format!("no sitting '{id}'")),
        }
    }

    /// `GET /v1/sittings/live`.
    pub(crate) fn live(&self, who: &dyn Visibility, cond: Conditional<'_>) -> Answer {
        let (projection, tag, matched) = match self.guard(cond) {
            Ok(x) => x,
            Err(a) => return a,
        };
        if matched {
            return Answer::NotModified { etag: tag };
        }
        let items: Vec<&SittingState> = projection
            .live_sittings()
            .filter(|s| who.sees(&sitting_topic(s)))
            .collect();
        Answer::Ok {
            body: json!({ "seq": projection.seq, "items": items }),
            etag: tag,
        }
    }
}

/// A topic of the sitting, for the grants check (a grant of any of its topics
/// shows it).
fn sitting_topic(s: &SittingState) -> String {
    format!("sitting.{}.{}.lifecycle", s.chamber, s.sitting_id)
}

fn day_key(day: NaiveDate) -> i64 {
    -(day
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp())
}

fn sitting_summary(s: &SittingState) -> Value {
    json!({
        "sitting_id": s.sitting_id,
        "chamber": s.chamber,
        "title": s.title,
        "number": s.number,
        "session": s.session,
        "day": s.day,
        "status": s.status,
        "opened_at": s.opened_at,
        "closed_at": s.closed_at,
        "seq": s.seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sapha_proto::examples::one_of_each_kind;

    struct All;
    impl Visibility for All {
        fn sees(&self, _: &str) -> bool {
            true
        }
    }

    fn store() -> StateStore {
        let s = StateStore::default();
        for (i, e) in one_of_each_kind().iter().enumerate() {
            s.apply(i as u64 + 1, e);
        }
        s.ready.store(true, Ordering::Release);
        s
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs)
    }

    const NONE: Conditional<'static> = Conditional {
        if_none_match: None,
        variant: "v",
    };

    fn cond(tag: &str) -> Conditional<'_> {
        Conditional {
            if_none_match: Some(tag),
            variant: "v",
        }
    }

    fn ok(a: Answer) -> (Value, String) {
        match a {
            Answer::Ok { body, etag } => (body, etag),
            _ => panic!("not ok"),
        }
    }

    #[test]
    fn bills_are_found_in_thai_and_english_with_the_match_marked() {
        let s = store();
        let (body, _) = ok(s.bills(&params(&[("q", "มาตรา 83")]), &All, NONE));
        assert_eq!(body["total"], 1);
        assert_eq!(body["items"][0]["match"]["field"], "title.th");
        assert_eq!(body["items"][0]["match"]["text"], "มาตรา 83");
        let (body, _) = ok(s.bills(&params(&[("q", "SECTIONS 83")]), &All, NONE));
        assert_eq!(body["items"][0]["match"]["text"], "sections 83");
        let (body, _) = ok(s.bills(&params(&[("q", "ภาษี")]), &All, NONE));
        assert_eq!(body["total"], 0);
    }

    #[test]
    fn a_bad_filter_names_its_parameter() {
        let s = store();
        for (p, name) in [
            (params(&[("stage", "HOUSE_R9")]), "stage"),
            (params(&[("moved_since", "yesterday")]), "moved_since"),
            (params(&[("limit", "0")]), "limit"),
            (params(&[("cursor", "!!")]), "cursor"),
            (params(&[("sort", "relevance")]), "sort"),
            (params(&[("colour", "red")]), "query"),
        ] {
            match s.bills(&p, &All, NONE) {
                Answer::BadParameter { parameter, .. } => assert_eq!(parameter, name),
                _ => panic!("{name} accepted"),
            }
        }
    }

    #[test]
    fn the_etag_is_the_position_and_a_match_is_not_modified() {
        let s = store();
        let (_, tag) = ok(s.bill("b-2564-ca-0001", &All, NONE));
        assert!(matches!(
            s.bill("b-2564-ca-0001", &All, cond(&tag)),
            Answer::NotModified { .. }
        ));
        // Weakly compared, in a list, and `*`.
        for header in [format!("W/{tag}"), format!("\"x\", {tag}"), "*".to_owned()] {
            assert!(
                matches!(
                    s.bill("b-2564-ca-0001", &All, cond(&header)),
                    Answer::NotModified { .. }
                ),
                "{header}"
            );
        }
        // A tag never makes a missing bill 304, nor matches another variant.
        assert!(matches!(
            s.bill("b-nope", &All, cond(&tag)),
            Answer::NotFound(_)
        ));
        assert!(matches!(
            s.bill("b-nope", &All, cond("*")),
            Answer::NotFound(_)
        ));
        let other = Conditional {
            if_none_match: Some(&tag),
            variant: "w",
        };
        assert!(matches!(
            s.bill("b-2564-ca-0001", &All, other),
            Answer::Ok { .. }
        ));
        s.advance(99);
        assert!(matches!(
            s.bill("b-2564-ca-0001", &All, cond(&tag)),
            Answer::Ok { .. }
        ));
    }

    #[test]
    fn pages_follow_each_other_without_a_gap() {
        let mut items: Vec<(i64, String, u32)> = (0..7)
            .map(|i| (i / 3, format!("id-{i}"), i as u32))
            .collect();
        items.reverse();
        let (total, first, next) = page(items.clone(), None, 3);
        assert_eq!((total, first.clone()), (7, vec![0, 1, 2]));
        let (_, second, next) = page(items.clone(), next, 3);
        assert_eq!(second, vec![3, 4, 5]);
        let (_, third, next) = page(items, next, 3);
        assert_eq!((third, next), (vec![6], None));
    }

    /// A cursor works with the query it came from (another limit too), and
    /// is refused with another filter, sort or path, edited, or after the
    /// stream was recreated (another epoch).
    #[test]
    fn a_cursor_is_bound_to_its_query() {
        let s = store();
        let query = [("stage", "ENACTED"), ("sort", "id")];
        let cursor = s.make_cursor(BILLS, &params(&query), 5, "b-1");
        let with = |extra: &[(&str, &str)], path: &str| {
            let mut pairs = extra.to_vec();
            pairs.push(("cursor", &cursor));
            s.cursor(path, &params(&pairs))
        };
        let same = with(
            &[("sort", "id"), ("limit", "3"), ("stage", "ENACTED")],
            BILLS,
        );
        assert_eq!(same.ok().flatten(), Some((5, "b-1".to_owned())));
        for (extra, path) in [
            (&[("stage", "ENACTED"), ("sort", "moved_asc")][..], BILLS),
            (&[("stage", "PROPOSED"), ("sort", "id")][..], BILLS),
            (&[("sort", "id")][..], BILLS),
            (&query[..], SITTINGS),
        ] {
            assert!(
                matches!(with(extra, path), Err(Answer::BadParameter { ref parameter, .. }) if parameter == "cursor"),
                "{extra:?} {path}"
            );
        }
        let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (_, mac) = cursor.split_once('.').unwrap();
        let edited = format!("{}.{mac}", b64.encode("0.b-1"));
        let mut pairs = query.to_vec();
        pairs.push(("cursor", &edited));
        assert!(
            s.cursor(BILLS, &params(&pairs)).is_err(),
            "an edited cursor"
        );
        s.set_epoch("another");
        pairs.pop();
        pairs.push(("cursor", &cursor));
        assert!(s.cursor(BILLS, &params(&pairs)).is_err(), "another epoch");
    }

    /// Repeated keys: a list parameter takes them all (with commas too), a
    /// single-valued one refuses the repeat naming it; strict numbers and
    /// dates; invalid UTF-8 is refused, not replaced.
    #[test]
    fn parameters_are_read_strictly_and_never_dropped() {
        let s = store();
        let total =
            |pairs: &[(&str, &str)]| ok(s.bills(&params(pairs), &All, NONE)).0["total"].clone();
        let both = total(&[("stage", "ENACTED"), ("stage", "PROPOSED")]);
        assert_eq!(both, total(&[("stage", "PROPOSED"), ("stage", "ENACTED")]));
        assert_eq!(both, total(&[("stage", "ENACTED,PROPOSED")]));
        assert_eq!(
            total(&[("stage", "ENACTED")]),
            total(&[("stage", "ENACTED"), ("stage", "ENACTED")])
        );
        let refused = |pairs: &[(&str, &str)]| match s.bills(&params(pairs), &All, NONE) {
            Answer::BadParameter { parameter, message } => (parameter, message),
            _ => panic!("{pairs:?} accepted"),
        };
        for name in ["q", "sort", "limit", "moved_since", "moved_on", "cursor"] {
            let value = match name {
                "limit" => "5",
                "moved_since" | "moved_on" => "2024-01-01",
                "sort" => "id",
                _ => "x",
            };
            let (parameter, message) = refused(&[(name, value), (name, value)]);
            assert_eq!(parameter, name);
            assert!(message.contains("2 times"), "{message}");
        }
        for limit in ["+5", "-1", " 5", "5.0", "0x5", "0", "201"] {
            assert_eq!(refused(&[("limit", limit)]).0, "limit", "{limit}");
        }
        for day in [
            "24-01-01",
            "2024-1-01",
            "+2024-01-01",
            "2024-01-01T00:00:00Z",
            "2024-02-30",
        ] {
            assert_eq!(refused(&[("moved_since", day)]).0, "moved_since", "{day}");
        }
        let (parameter, message) = refused(&[("moved_since", "2567-12-04")]);
        assert_eq!(parameter, "moved_since");
        assert!(
            message.contains("subtract 543") && message.contains("2024-12-04"),
            "{message}"
        );
        for raw in ["q=%FF", "q=%E0%B8", "q=ok&stage=%C3%28"] {
            assert!(
                matches!(Params::parse(Some(raw)), Err(Answer::BadParameter { .. })),
                "{raw}"
            );
        }
        let p = Params::parse(Some(
            "q=%E0%B8%A0%E0%B8%B2%E0%B8%A9%E0%B8%B5+%E0%B8%AD&stage=A",
        ))
        .unwrap();
        assert_eq!(p.one("q").ok().flatten(), Some("ภาษี อ"));
        // Sittings: `status` and `chamber` are lists, `from` and `to` single.
        let sittings = |pairs: &[(&str, &str)]| s.sittings(&params(pairs), &All, NONE);
        assert!(matches!(
            sittings(&[("status", "open"), ("status", "closed")]),
            Answer::Ok { .. }
        ));
        assert!(matches!(
            sittings(&[("from", "2021-01-01"), ("from", "2022-01-01")]),
            Answer::BadParameter { ref parameter, .. } if parameter == "from"
        ));
    }

    #[test]
    fn not_ready_until_built() {
        let s = StateStore::default();
        assert!(matches!(
            s.bills(&params(&[]), &All, NONE),
            Answer::NotReady
        ));
    }
}
