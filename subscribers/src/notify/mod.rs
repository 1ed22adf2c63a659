//! `sapha notify`: bill-follow notifications. A user follows bills; each stage
//! change of a followed bill becomes one notification per follower, POSTed to
//! a push gateway, in Thai and English. A change is never notified twice.
//!
//! ## Never twice
//!
//! Every notification has a key, (user, event id). A key is appended to the
//! sent log (fsynced) as soon as the gateway answered 2xx, and the log is read
//! back on start, so no restart sends a key again. The stream position is
//! checkpointed after each event, so a restart does not miss changes either.
//! The one window left, a crash between the gateway's 2xx and the log append,
//! is covered by the `Idempotency-Key: <user>:<event id>` header the gateway
//! can dedupe on.

mod text;

pub use text::notification_text;

use crate::client::{Backoff, ClientError, Delivery, Item};
use crate::durable;
use futures::{Stream, StreamExt};
use sapha_proto::event::{Body, Text};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Up to this many followed bills are subscribed one topic each; beyond it the
/// notifier takes `bill.*.stage` and filters itself (a hub allows 100
/// subscriptions per connection by default).
pub const MAX_BILL_TOPICS: usize = 64;

/// Who follows which bills: `{"user-id": ["b-2566-0123", ...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Follows(pub BTreeMap<String, Vec<String>>);

impl Follows {
    /// Parses the JSON form.
    pub fn parse(json: &str) -> Result<Follows, NotifyError> {
        serde_json::from_str(json).map_err(NotifyError::Follows)
    }

    /// Reads a follows file.
    pub fn load(path: &Path) -> Result<Follows, NotifyError> {
        let text = std::fs::read_to_string(path).map_err(|source| NotifyError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        Follows::parse(&text)
    }

    /// Every followed bill.
    pub fn bills(&self) -> BTreeSet<&str> {
        self.0.values().flatten().map(String::as_str).collect()
    }

    /// The users who follow `bill`.
    pub fn followers<'a>(&'a self, bill: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(_, bills)| bills.iter().any(|b| b == bill))
            .map(|(user, _)| user.as_str())
    }

    /// The topic filters to subscribe to.
    pub fn topics(&self) -> Vec<String> {
        let bills = self.bills();
        if bills.len() > MAX_BILL_TOPICS {
            return vec!["bill.*.stage".into()];
        }
        bills.iter().map(|b| format!("bill.{b}.stage")).collect()
    }
}

/// What is POSTed to the push gateway (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub user: String,
    pub bill_id: String,
    pub event_id: String,
    /// The stream sequence of the stage change.
    pub seq: u64,
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub title: Text,
    /// The message, in Thai and English.
    pub text: Text,
    /// When the change happened (RFC 3339, UTC).
    pub occurred_at: String,
}

/// Settings of a notifier.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub follows: Follows,
    /// The push gateway: each notification is one POST here.
    pub gateway_url: String,
    /// Holds `sent.ndjson` (the keys sent) and `checkpoint.json` (the position).
    pub state_dir: PathBuf,
    /// Stop (to retry on restart) after this many failed attempts of one POST.
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub timeout: Duration,
}

#[derive(Debug, Error)]
pub enum NotifyError {
    #[error("the follows file is not {{\"user\": [\"bill-id\", ...]}}")]
    Follows(#[source] serde_json::Error),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("building the http client")]
    Http(#[source] reqwest::Error),
    #[error("the push gateway did not take {key} after {attempts} attempts; last: {last}")]
    GaveUp {
        key: String,
        attempts: u32,
        last: String,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
}

#[derive(Debug, Serialize, Deserialize)]
struct SentKey {
    user: String,
    event_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Position {
    seq: u64,
    /// The stream epoch `seq` belongs to (absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<String>,
}

/// The notifier: follows, the sent log, and the gateway client.
pub struct Notifier {
    settings: NotifySettings,
    sent: HashSet<(String, String)>,
    sent_log: std::fs::File,
    position: Option<u64>,
    /// The stream epoch `position` belongs to.
    epoch: Option<String>,
    http: reqwest::Client,
    delivered: u64,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NotifyError {
    let what = what.into();
    move |source| NotifyError::Io { what, source }
}

impl Notifier {
    /// Reads the state directory (creating it if needed).
    pub fn open(settings: NotifySettings) -> Result<Notifier, NotifyError> {
        let dir = &settings.state_dir;
        std::fs::create_dir_all(dir).map_err(io("creating the state directory"))?;
        let log_path = dir.join("sent.ndjson");
        let mut sent = HashSet::new();
        if let Ok(text) = std::fs::read_to_string(&log_path) {
            // A torn last line (a crash mid-append) is skipped: that key was
            // not confirmed as logged.
            for line in text.lines() {
                if let Ok(k) = serde_json::from_str::<SentKey>(line) {
                    sent.insert((k.user, k.event_id));
                }
            }
        }
        let sent_log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("opening the sent log"))?;
        durable::sync_dir(dir).map_err(io("syncing the state directory"))?;
        let saved = match std::fs::read(dir.join("checkpoint.json")) {
            Ok(b) => Some(
                serde_json::from_slice::<Position>(&b).map_err(|e| NotifyError::Io {
                    what: "reading checkpoint.json".into(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?,
            ),
            Err(_) => None,
        };
        let position = saved.as_ref().map(|p| p.seq);
        let epoch = saved.and_then(|p| p.epoch);
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(NotifyError::Http)?;
        Ok(Notifier {
            settings,
            sent,
            sent_log,
            position,
            epoch,
            http,
            delivered: 0,
        })
    }

    /// The stream position to resume after.
    pub fn position(&self) -> Option<u64> {
        self.position
    }

    /// The stream epoch [`Notifier::position`] belongs to, if known: give it
    /// to [`ClientBuilder::resume_epoch`](crate::ClientBuilder::resume_epoch).
    pub fn epoch(&self) -> Option<String> {
        self.epoch.clone()
    }

    /// The topics to subscribe to.
    pub fn topics(&self) -> Vec<String> {
        self.settings.follows.topics()
    }

    /// Notifications sent since opening.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The notifications one delivery calls for (pure: nothing is sent).
    pub fn notifications(&self, d: &Delivery) -> Vec<Notification> {
        let Body::BillStageChanged(b) = &d.event.body else {
            return Vec::new();
        };
        let text = notification_text(b);
        self.settings
            .follows
            .followers(&b.bill_id)
            .map(|user| Notification {
                user: user.to_owned(),
                bill_id: b.bill_id.clone(),
                event_id: d.event.event_id.clone(),
                seq: d.seq,
                from_stage: b.from_stage.map(|s| s.code().to_owned()),
                to_stage: b.to_stage.code().to_owned(),
                title: b.title.clone(),
                text: text.clone(),
                occurred_at: d
                    .event
                    .occurred_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            })
            .collect()
    }

    /// Sends what one delivery calls for and was not sent before, then
    /// checkpoints it. Returns how many were sent.
    pub async fn handle(&mut self, d: &Delivery) -> Result<usize, NotifyError> {
        let mut sent = 0;
        for n in self.notifications(d) {
            let key = (n.user.clone(), n.event_id.clone());
            if self.sent.contains(&key) {
                tracing::debug!(user = %n.user, event_id = %n.event_id, "already notified");
                continue;
            }
            if self.post(&n).await? {
                self.record(&n)?;
                self.sent.insert(key);
                sent += 1;
                self.delivered += 1;
            }
        }
        let position = Position {
            seq: d.seq,
            epoch: self.epoch.clone(),
        };
        let bytes = serde_json::to_vec(&position).expect("serializes");
        durable::replace(&self.settings.state_dir.join("checkpoint.json"), &bytes)
            .map_err(io("saving the checkpoint"))?;
        self.position = Some(d.seq);
        Ok(sent)
    }

    fn record(&mut self, n: &Notification) -> Result<(), NotifyError> {
        let mut line = serde_json::to_vec(&SentKey {
            user: n.user.clone(),
            event_id: n.event_id.clone(),
        })
        .expect("serializes");
        line.push(b'\n');
        self.sent_log
            .write_all(&line)
            .and_then(|()| self.sent_log.sync_data())
            .map_err(io("appending to the sent log"))
    }

    /// One POST with retries. `Ok(false)`: the gateway refused it for good (4xx);
    /// that is logged and not retried.
    async fn post(&self, n: &Notification) -> Result<bool, NotifyError> {
        let key = format!("{}:{}", n.user, n.event_id);
        let attempts = self.settings.max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(self.settings.backoff.delay(attempt - 1)).await;
            }
            let r = self
                .http
                .post(&self.settings.gateway_url)
                .header("idempotency-key", &key)
                .json(n)
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => return Ok(true),
                Ok(r) => {
                    let status = r.status().as_u16();
                    if !(status == 408 || status == 429 || status >= 500) {
                        tracing::error!(%key, status, "the push gateway refused a notification");
                        return Ok(false);
                    }
                    last = format!("status {status}");
                }
                Err(e) => last = e.to_string(),
            }
            tracing::warn!(%key, attempt, error = %last, "push failed; retrying");
        }
        Err(NotifyError::GaveUp {
            key,
            attempts,
            last,
        })
    }

    /// Handles items until they end, fail, or `shutdown` resolves.
    pub async fn run<S>(
        mut self,
        items: S,
        shutdown: impl Future<Output = ()>,
    ) -> Result<u64, NotifyError>
    where
        S: Stream<Item = Result<Item, ClientError>> + Unpin,
    {
        let mut items = items;
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let item = tokio::select! {
                item = items.next() => item,
                _ = &mut shutdown => return Ok(self.delivered),
            };
            match item {
                None => return Ok(self.delivered),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Item::Event(d))) => {
                    self.handle(&d).await?;
                }
                Some(Ok(Item::HistoryLost { since, first_seq })) => {
                    tracing::error!(
                        since,
                        first_seq,
                        "history lost: stage changes in between are not notified"
                    );
                }
                Some(Ok(Item::StreamReset { since, first_seq })) => {
                    // The replay from first_seq notifies only what the sent
                    // log has not: (user, event id) keys are never sent twice.
                    tracing::error!(
                        since,
                        first_seq,
                        "the stream was reset below our position: replaying it from its first event"
                    );
                }
                Some(Ok(Item::Connected { epoch, .. })) if !epoch.is_empty() => {
                    // Events from here on (and so the checkpoints) belong to it.
                    self.epoch = Some(epoch);
                }
                Some(Ok(other)) => tracing::info!(?other, "client"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_name_their_topics() {
        let f = Follows::parse(r#"{"u1": ["b-2566-0001", "b-2566-0002"], "u2": ["b-2566-0001"]}"#)
            .unwrap();
        assert_eq!(
            f.topics(),
            ["bill.b-2566-0001.stage", "bill.b-2566-0002.stage"]
        );
        assert_eq!(f.followers("b-2566-0001").collect::<Vec<_>>(), ["u1", "u2"]);
        assert_eq!(f.followers("b-9").count(), 0);
        let many: BTreeMap<String, Vec<String>> =
            [("u".to_owned(), (0..100).map(|i| format!("b-{i}")).collect())].into();
        assert_eq!(Follows(many).topics(), ["bill.*.stage"]);
        assert!(Follows::parse(r#"["b-1"]"#).is_err());
    }
}
