//! The follow store: one JetStream key-value bucket, replicated like the
//! event stream, so any hub can serve any follower and any notifier replica
//! can read them.
//!
//! Keys:
//! - `f.<follower>`: the [`Follower`] (JSON), its secret only as a hash;
//! - `b.<bill>.<follower>`: the [`Delivery`] the notifier needs for one
//!   follower of one bill, so that a bill's followers are one subject filter;
//! - `config.vapid_public_key`: the notifier's VAPID public key, for browsers;
//! - `config.channels`: the channels the notifiers have set up (a JSON list).
//!
//! The bucket keeps one revision per key, and a deletion purges: a deleted
//! follower's push endpoint is gone from the bucket at once.

use crate::model::{
    check_bills, check_channel, Channel, Delivery, Follower, InvalidFollow, Lang, Limits,
};
use async_nats::jetstream::{self, kv};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::time::Duration;
use thiserror::Error;

/// The bucket's default name.
pub const DEFAULT_BUCKET: &str = "SAPHA_FOLLOWS";
const VAPID_KEY: &str = "config.vapid_public_key";
const CHANNELS_KEY: &str = "config.channels";
/// Compare-and-set attempts before an update gives up (concurrent edits).
const CAS_ATTEMPTS: usize = 8;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("no such follower")]
    UnknownFollower,
    #[error("the secret does not match")]
    BadSecret,
    #[error(transparent)]
    Invalid(#[from] InvalidFollow),
    #[error("the follower kept changing under us; try again")]
    Conflict,
    #[error("the follower's record cannot be read")]
    Corrupt,
    #[error("the follow store is unavailable: {0}")]
    Unavailable(String),
    #[error("the Web Push key in the follow store is not a P-256 public key")]
    BadVapidKey,
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// A handle on the bucket; cheap to clone.
#[derive(Clone)]
pub struct FollowStore {
    kv: kv::Store,
    js: jetstream::Context,
    bucket: String,
}

impl FollowStore {
    /// Opens the bucket if it exists.
    pub async fn open_existing(
        js: &jetstream::Context,
        bucket: &str,
    ) -> Result<Option<FollowStore>, StoreError> {
        match js.get_key_value(bucket).await {
            Ok(kv) => Ok(Some(FollowStore {
                kv,
                js: js.clone(),
                bucket: bucket.to_owned(),
            })),
            Err(e) if e.kind() == jetstream::context::KeyValueErrorKind::GetBucket => {
                // "not found" and "cannot ask" look alike here: the caller
                // creates, which fails in turn if NATS does not answer.
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Opens the bucket, creating it with `replicas` copies if it is missing.
    pub async fn open(
        js: &jetstream::Context,
        bucket: &str,
        replicas: usize,
    ) -> Result<FollowStore, StoreError> {
        let kv = match js.get_key_value(bucket).await {
            Ok(kv) => kv,
            Err(_) => js
                .create_key_value(kv::Config {
                    bucket: bucket.to_owned(),
                    description: "Sapha: who follows which bill (anonymous)".into(),
                    history: 1,
                    max_value_size: 64 * 1024,
                    num_replicas: replicas.max(1),
                    ..Default::default()
                })
                .await
                .map_err(unavailable)?,
        };
        Ok(FollowStore {
            kv,
            js: js.clone(),
            bucket: bucket.to_owned(),
        })
    }

    /// Creates a follower; returns it and its secret (shown once, stored hashed).
    pub async fn create(
        &self,
        lang: Lang,
        channel: Channel,
        bills: &[String],
        limits: &Limits,
    ) -> Result<(Follower, String), StoreError> {
        check_channel(&channel, limits)?;
        let bills = check_bills(bills, limits)?;
        let id = hex(&rand::random::<[u8; 16]>());
        let secret = {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            use base64::Engine;
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        };
        let follower = Follower {
            id: id.clone(),
            secret_sha256: hash(&secret),
            lang,
            channel,
            bills,
            created_at: chrono::Utc::now(),
        };
        self.kv
            .create(follower_key(&id), json(&follower))
            .await
            .map_err(unavailable)?;
        self.index(&follower).await?;
        Ok((follower, secret))
    }

    /// The follower `id` if `secret` is its secret.
    pub async fn authorize(&self, id: &str, secret: &str) -> Result<Follower, StoreError> {
        Ok(self.read_authorized(id, secret).await?.0)
    }

    async fn read_authorized(&self, id: &str, secret: &str) -> Result<(Follower, u64), StoreError> {
        let (follower, revision) = self.read(id).await?.ok_or(StoreError::UnknownFollower)?;
        let given = hash(secret);
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(given.as_bytes(), follower.secret_sha256.as_bytes())
                .into();
        if !same {
            return Err(StoreError::BadSecret);
        }
        Ok((follower, revision))
    }

    /// The stored follower and its revision, without checking a secret.
    pub async fn read(&self, id: &str) -> Result<Option<(Follower, u64)>, StoreError> {
        if sapha_proto::ids::validate_id(id).is_err() {
            return Ok(None);
        }
        let Some(entry) = self.kv.entry(follower_key(id)).await.map_err(unavailable)? else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let follower = serde_json::from_slice(&entry.value).map_err(|e| {
            tracing::warn!(follower = id, error = %e, "a follower record does not parse");
            StoreError::Corrupt
        })?;
        Ok(Some((follower, entry.revision)))
    }

    /// Changes a follower (after checking its secret) with compare-and-set,
    /// then brings the per-bill index in line. `change` may refuse with
    /// [`InvalidFollow`].
    pub async fn update(
        &self,
        id: &str,
        secret: &str,
        limits: &Limits,
        change: impl Fn(&mut Follower) -> Result<(), InvalidFollow>,
    ) -> Result<Follower, StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let (before, revision) = self.read_authorized(id, secret).await?;
            let mut after = before.clone();
            change(&mut after)?;
            check_channel(&after.channel, limits)?;
            after.bills = check_bills(&after.bills, limits)?;
            // Unfollowed bills leave the index before the follower is
            // written, followed ones enter it after: a crash in between leaves
            // at most a followed bill unindexed, never a notification for a
            // bill unfollowed. The next update rewrites the whole index.
            let dropped: Vec<String> = before
                .bills
                .iter()
                .filter(|b| !after.bills.contains(b))
                .cloned()
                .collect();
            self.unindex(id, &dropped).await?;
            match self
                .kv
                .update(follower_key(id), json(&after), revision)
                .await
            {
                Ok(_) => {
                    self.index(&after).await?;
                    return Ok(after);
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Deletes a follower and every trace of it (after checking its secret).
    ///
    /// A record that does not parse (corrupt, or written by something else)
    /// can still be deleted: with its secret when its `secret_sha256` can
    /// still be read, and by anyone naming its id when even that cannot (it
    /// can deliver nothing, and keeping it would keep what personal data it
    /// holds). Its index entries go too.
    pub async fn delete(&self, id: &str, secret: &str) -> Result<(), StoreError> {
        match self.read_authorized(id, secret).await {
            Ok((follower, _)) => self.remove(&follower).await,
            Err(StoreError::Corrupt) => {
                let raw = self.raw(id).await?.ok_or(StoreError::UnknownFollower)?;
                let value: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
                if let Some(stored) = value.get("secret_sha256").and_then(|h| h.as_str()) {
                    let same: bool =
                        subtle::ConstantTimeEq::ct_eq(hash(secret).as_bytes(), stored.as_bytes())
                            .into();
                    if !same {
                        return Err(StoreError::BadSecret);
                    }
                }
                self.remove_any(id).await
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes a follower whose channel is gone (a push service answered 404
    /// or 410, or it kept failing): its subscription is personal data with no
    /// more use.
    pub async fn remove_unreachable(&self, id: &str) -> Result<(), StoreError> {
        match self.read(id).await {
            Ok(Some((follower, _))) => self.remove(&follower).await,
            Ok(None) => Ok(()),
            Err(StoreError::Corrupt) => self.remove_any(id).await,
            Err(e) => Err(e),
        }
    }

    /// The stored bytes of `f.<id>`, if any.
    async fn raw(&self, id: &str) -> Result<Option<bytes::Bytes>, StoreError> {
        if sapha_proto::ids::validate_id(id).is_err() {
            return Ok(None);
        }
        let entry = self.kv.entry(follower_key(id)).await.map_err(unavailable)?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| e.value))
    }

    /// Removes a follower whose record cannot be read: every index entry
    /// naming it (found by listing the keys), then the record.
    async fn remove_any(&self, id: &str) -> Result<(), StoreError> {
        let suffix = format!(".{id}");
        let mut keys = self.kv.keys().await.map_err(unavailable)?;
        let mut index = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(unavailable)?;
            if key.starts_with("b.") && key.ends_with(&suffix) {
                index.push(key);
            }
        }
        for key in index {
            self.kv.purge(key).await.map_err(unavailable)?;
        }
        self.kv.purge(follower_key(id)).await.map_err(unavailable)
    }

    async fn remove(&self, follower: &Follower) -> Result<(), StoreError> {
        self.unindex(&follower.id, &follower.bills).await?;
        self.kv
            .purge(follower_key(&follower.id))
            .await
            .map_err(unavailable)
    }

    /// Writes the index entry of every followed bill.
    async fn index(&self, follower: &Follower) -> Result<(), StoreError> {
        let delivery = json(&follower.delivery());
        for bill in &follower.bills {
            self.kv
                .put(bill_key(bill, &follower.id), delivery.clone())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn unindex(&self, id: &str, bills: &[String]) -> Result<(), StoreError> {
        for bill in bills {
            self.kv
                .purge(bill_key(bill, id))
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Every follower of `bill` (each once), read from the index with one
    /// ordered consumer: the newest entry per key, without deleted ones.
    pub async fn followers_of(&self, bill: &str) -> Result<Vec<Delivery>, StoreError> {
        if sapha_proto::ids::validate_id(bill).is_err() {
            return Ok(Vec::new());
        }
        let stream = self
            .js
            .get_stream(format!("KV_{}", self.bucket))
            .await
            .map_err(unavailable)?;
        let mut consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: format!("$KV.{}.b.{bill}.*", self.bucket),
                deliver_policy: jetstream::consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        let pending = consumer.info().await.map_err(unavailable)?.num_pending;
        let mut out = Vec::with_capacity(pending as usize);
        if pending == 0 {
            return Ok(out);
        }
        let mut messages = consumer.messages().await.map_err(unavailable)?;
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
            let message = match next {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(unavailable(e)),
                Ok(None) => break,
                Err(_) => return Err(unavailable("reading the index timed out")),
            };
            let left = message.info().map_err(unavailable)?.pending;
            let deleted = message
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .is_some();
            if !deleted && !message.payload.is_empty() {
                if let Ok(d) = serde_json::from_slice::<Delivery>(&message.payload) {
                    out.push(d);
                }
            }
            if left == 0 {
                break;
            }
        }
        Ok(out)
    }

    /// Publishes the notifier's VAPID public key (base64url) for browsers.
    /// A garbage value there is overwritten.
    pub async fn set_vapid_public_key(&self, key: &str) -> Result<(), StoreError> {
        let current = self.kv.get(VAPID_KEY).await.map_err(unavailable)?;
        if current.as_deref() != Some(key.as_bytes()) {
            self.kv
                .put(VAPID_KEY, key.to_owned().into())
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    /// Adds the channels a notifier has set up (`webpush`, `line`,
    /// `webhook`) to the announced set (a JSON list; the union over every
    /// notifier replica), so the follow API takes only channels someone sends.
    pub async fn announce_channels(&self, kinds: &[&str]) -> Result<(), StoreError> {
        for _ in 0..CAS_ATTEMPTS {
            let entry = self
                .kv
                .entry(CHANNELS_KEY)
                .await
                .map_err(unavailable)?
                .filter(|e| e.operation == kv::Operation::Put);
            let mut set: Vec<String> = entry
                .as_ref()
                .and_then(|e| serde_json::from_slice(&e.value).ok())
                .unwrap_or_default();
            let before = set.len();
            for k in kinds {
                if !set.iter().any(|s| s == k) {
                    set.push((*k).to_owned());
                }
            }
            if entry.is_some() && set.len() == before {
                return Ok(());
            }
            set.sort();
            let value = json(&set);
            let written = match &entry {
                Some(e) => self
                    .kv
                    .update(CHANNELS_KEY, value, e.revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => self
                    .kv
                    .create(CHANNELS_KEY, value)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            if written.is_ok() {
                return Ok(());
            }
        }
        Err(StoreError::Conflict)
    }

    /// The channels notifiers have announced; `None` when none has.
    pub async fn channels(&self) -> Result<Option<Vec<String>>, StoreError> {
        let value = self.kv.get(CHANNELS_KEY).await.map_err(unavailable)?;
        Ok(value.map(|v| serde_json::from_slice(&v).unwrap_or_default()))
    }

    /// The VAPID public key a notifier published, if any. A stored value
    /// that is not a base64url uncompressed P-256 public key is
    /// [`StoreError::BadVapidKey`] (never handed to browsers).
    pub async fn vapid_public_key(&self) -> Result<Option<String>, StoreError> {
        let Some(value) = self.kv.get(VAPID_KEY).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let key = String::from_utf8(value.to_vec()).map_err(|_| StoreError::BadVapidKey)?;
        if !is_vapid_public_key(&key) {
            return Err(StoreError::BadVapidKey);
        }
        Ok(Some(key))
    }
}

/// A VAPID public key as browsers take it: base64url (no padding) of an
/// uncompressed P-256 point that is on the curve.
pub fn is_vapid_public_key(key: &str) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    match URL_SAFE_NO_PAD.decode(key) {
        Ok(raw) => raw.len() == 65 && raw[0] == 4 && p256::PublicKey::from_sec1_bytes(&raw).is_ok(),
        Err(_) => false,
    }
}

fn follower_key(id: &str) -> String {
    format!("f.{id}")
}

fn bill_key(bill: &str, follower: &str) -> String {
    format!("b.{bill}.{follower}")
}

fn json<T: serde::Serialize>(value: &T) -> bytes::Bytes {
    serde_json::to_vec(value).expect("serializes").into()
}

fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
