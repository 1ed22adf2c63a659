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
    /// The state thread's queue (see [`StateStore::enqueue`]).
    queue: std::sync::OnceLock<std::sync::mpsc::Sender<(u64, Option<Event>)>>,
    /// This store, for the state thread.
    me: std::sync::OnceLock<std::sync::Weak<StateStore>>,
}

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

    /// The position the state reflects.
    pub(crate) fn seq(&self) -> u64 {
        self.read().seq
    }

    /// Hands the event at `seq` to the state's own thread, which applies it in
    /// order: a long state request holding the read lock then never delays the
    /// fan-out. The state's `seq` trails the fan-out by the events in flight.
    pub(crate) fn enqueue(&self, seq: u64, event: Option<Event>) {
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<(u64, Option<Event>)>();
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
        let _ = queue.send((seq, event));
    }

    /// Applies events (or bare positions) in order, under one lock.
    fn apply_batch(&self, batch: &[(u64, Option<Event>)]) {
        {
            let mut projection = self.write();
            for (seq, event) in batch {
                match event {
                    Some(e) => projection.apply(*seq, e),
                    None => projection.advance(*seq),
                }
            }
        }
        for event in batch.iter().filter_map(|(_, e)| e.as_ref()) {
            self.prepare_title(event);
        }
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
pub(crate) enum Answer {
    Ok {
        body: Value,
        etag: String,
    },
    NotModified {
        etag: String,
    },
    NotFound(String),
    BadParameter {
        parameter: &'static str,
        message: String,
    },
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

fn etag(epoch: &str, seq: u64) -> String {
    format!("\"{epoch}-{seq}\"")
}

fn bad(parameter: &'static str, message: impl Into<String>) -> Answer {
    Answer::BadParameter {
        parameter,
        message: message.into(),
    }
}

/// Parses a comma-separated list of codes.
fn codes<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    name: &'static str,
) -> Result<Option<Vec<T>>, Answer> {
    let Some(raw) = params.get(name) else {
        return Ok(None);
    };
    raw.split(',')
        .map(|code| {
            code.trim()
                .parse::<T>()
                .map_err(|_| bad(name, format!("{name}: unknown code '{}'", code.trim())))
        })
        .collect::<Result<Vec<T>, Answer>>()
        .map(Some)
}

fn date(params: &HashMap<String, String>, name: &'static str) -> Result<Option<NaiveDate>, Answer> {
    params
        .get(name)
        .map(|d| {
            d.parse::<NaiveDate>()
                .map_err(|_| bad(name, format!("{name}: '{d}' is not a date (YYYY-MM-DD)")))
        })
        .transpose()
}

fn limit(params: &HashMap<String, String>) -> Result<usize, Answer> {
    match params.get("limit") {
        None => Ok(DEFAULT_PAGE),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(bad("limit", format!("limit: from 1 to {MAX_PAGE}"))),
        },
    }
}

/// A page position: the sort key and id of the last item of the page before.
fn cursor(params: &HashMap<String, String>) -> Result<Option<(i64, String)>, Answer> {
    let Some(raw) = params.get("cursor") else {
        return Ok(None);
    };
    let invalid = || bad("cursor", "cursor: not a cursor this API gave out");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (key, id) = text.split_once('.').ok_or_else(invalid)?;
    Ok(Some((key.parse().map_err(|_| invalid())?, id.to_owned())))
}

fn make_cursor(key: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{key}.{id}"))
}

/// Keeps the page after `after` of items sorted by (key, id).
fn page<T>(
    mut items: Vec<(i64, String, T)>,
    after: Option<(i64, String)>,
    limit: usize,
) -> (usize, Vec<T>, Option<String>) {
    items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let total = items.len();
    let start = after.map_or(0, |(k, id)| {
        items.partition_point(|x| (x.0, &x.1) <= (k, &id))
    });
    let rest: Vec<_> = items.into_iter().skip(start).collect();
    let next = (rest.len() > limit).then(|| make_cursor(rest[limit - 1].0, &rest[limit - 1].1));
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
    fn guard(
        &self,
        if_none_match: Option<&str>,
    ) -> Result<(RwLockReadGuard<'_, Projection>, String), Answer> {
        if !self.is_ready() {
            return Err(Answer::NotReady);
        }
        let projection = self.read();
        let tag = etag(
            &self.epoch.read().unwrap_or_else(|e| e.into_inner()),
            projection.seq,
        );
        if if_none_match.is_some_and(|m| m.split(',').any(|t| t.trim() == tag || t.trim() == "*")) {
            return Err(Answer::NotModified { etag: tag });
        }
        Ok((projection, tag))
    }

    /// `GET /v1/bills`.
    pub(crate) fn bills(
        &self,
        params: &HashMap<String, String>,
        who: &dyn Visibility,
        if_none_match: Option<&str>,
    ) -> Answer {
        match self.bills_inner(params, who, if_none_match) {
            Ok(a) | Err(a) => a,
        }
    }

    fn bills_inner(
        &self,
        params: &HashMap<String, String>,
        who: &dyn Visibility,
        if_none_match: Option<&str>,
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
        if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(Answer::BadParameter {
                parameter: "query",
                message: format!("{unknown}: not a filter of /v1/bills (see docs/STATE.md)"),
            });
        }
        let stages: Option<Vec<Stage>> = codes(params, "stage")?;
        let types: Option<Vec<BillType>> = codes(params, "type")?;
        let chambers: Option<Vec<Chamber>> = codes(params, "chamber")?;
        // `introducer` is another name for `proposer`.
        let proposers: Option<Vec<Proposer>> = match codes(params, "proposer")? {
            Some(p) => Some(p),
            None => codes(params, "introducer")?,
        };
        let moved_since = date(params, "moved_since")?;
        let moved_on = date(params, "moved_on")?;
        let query = params
            .get("q")
            .map(|q| (search::normalize(q), search::normalized(q)));
        if query.as_ref().is_some_and(|(q, _)| q.chars.is_empty()) {
            return Err(bad("q", "q: is empty"));
        }
        let sort = params
            .get("sort")
            .map(String::as_str)
            .unwrap_or(if query.is_some() {
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
        let after = cursor(params)?;
        let (projection, tag) = self.guard(if_none_match)?;
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
    pub(crate) fn bill(
        &self,
        id: &str,
        who: &dyn Visibility,
        if_none_match: Option<&str>,
    ) -> Answer {
        let (projection, tag) = match self.guard(if_none_match) {
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
        params: &HashMap<String, String>,
        who: &dyn Visibility,
        if_none_match: Option<&str>,
    ) -> Answer {
        let run = || -> Result<Answer, Answer> {
            const KNOWN: &[&str] = &["from", "to", "chamber", "status", "limit", "cursor"];
            if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
                return Err(Answer::BadParameter {
                    parameter: "query",
                    message: format!("{unknown}: not a filter of /v1/sittings (see docs/STATE.md)"),
                });
            }
            let from = date(params, "from")?;
            let to = date(params, "to")?;
            if let (Some(f), Some(t)) = (from, to) {
                if f > t {
                    return Err(bad("to", "to: before from"));
                }
            }
            let chambers: Option<Vec<Chamber>> = codes(params, "chamber")?;
            let statuses = match params.get("status") {
                None => None,
                Some(raw) => Some(
                    raw.split(',')
                        .map(|s| {
                            serde_json::from_value::<SittingStatus>(json!(s.trim())).map_err(|_| {
                                bad("status", format!("status: unknown code '{}'", s.trim()))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ),
            };
            let limit = limit(params)?;
            let after = cursor(params)?;
            let (projection, tag) = self.guard(if_none_match)?;
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
    pub(crate) fn sitting(
        &self,
        id: &str,
        who: &dyn Visibility,
        if_none_match: Option<&str>,
    ) -> Answer {
        let (projection, tag) = match self.guard(if_none_match) {
            Ok(x) => x,
            Err(a) => return a,
        };
        match projection
            .sittings
            .get(id)
            .filter(|s| who.sees(&sitting_topic(s)))
        {
            Some(s) => Answer::Ok {
                body: json!({ "seq": projection.seq, "sitting": s }),
                etag: tag,
            },
            None => Answer::NotFound(format!("no sitting '{id}'")),
        }
    }

    /// `GET /v1/sittings/live`.
    pub(crate) fn live(&self, who: &dyn Visibility, if_none_match: Option<&str>) -> Answer {
        let (projection, tag) = match self.guard(if_none_match) {
            Ok(x) => x,
            Err(a) => return a,
        };
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

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
        let (body, _) = ok(s.bills(&params(&[("q", "มาตรา 83")]), &All, None));
        assert_eq!(body["total"], 1);
        assert_eq!(body["items"][0]["match"]["field"], "title.th");
        assert_eq!(body["items"][0]["match"]["text"], "มาตรา 83");
        let (body, _) = ok(s.bills(&params(&[("q", "SECTIONS 83")]), &All, None));
        assert_eq!(body["items"][0]["match"]["text"], "sections 83");
        let (body, _) = ok(s.bills(&params(&[("q", "ภาษี")]), &All, None));
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
            match s.bills(&p, &All, None) {
                Answer::BadParameter { parameter, .. } => assert_eq!(parameter, name),
                _ => panic!("{name} accepted"),
            }
        }
    }

    #[test]
    fn the_etag_is_the_position_and_a_match_is_not_modified() {
        let s = store();
        let (_, tag) = ok(s.bill("b-2564-ca-0001", &All, None));
        assert!(matches!(
            s.bill("b-2564-ca-0001", &All, Some(&tag)),
            Answer::NotModified { .. }
        ));
        assert!(matches!(s.bill("b-nope", &All, None), Answer::NotFound(_)));
        s.advance(99);
        assert!(matches!(
            s.bill("b-2564-ca-0001", &All, Some(&tag)),
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
        let after = cursor(&params(&[("cursor", &next.unwrap())]))
            .ok()
            .flatten();
        let (_, second, next) = page(items.clone(), after, 3);
        assert_eq!(second, vec![3, 4, 5]);
        let after = cursor(&params(&[("cursor", &next.unwrap())]))
            .ok()
            .flatten();
        let (_, third, next) = page(items, after, 3);
        assert_eq!((third, next), (vec![6], None));
    }

    #[test]
    fn not_ready_until_built() {
        let s = StateStore::default();
        assert!(matches!(
            s.bills(&params(&[]), &All, None),
            Answer::NotReady
        ));
    }
}
