//! Webhook delivery: one POST per event, HMAC-SHA256 signed, retried with
//! backoff.
//!
//! ## The signature
//!
//! Each request carries `X-Sapha-Timestamp: <unix seconds>` and
//! `X-Sapha-Signature: sha256=<hex>`, where the hex is
//! `HMAC-SHA256(secret, "<timestamp>.<body>")`. Binding the timestamp stops a
//! captured request from being replayed later: a receiver checks the MAC (in
//! constant time) and that the timestamp is recent. `X-Sapha-Event-Id` and
//! `X-Sapha-Seq` let the receiver drop the redelivery that follows a crash
//! between its 2xx and the sink's checkpoint.

use crate::client::Backoff;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// Where and how to POST.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `http://` URL to POST each event to.
    pub url: String,
    /// The shared HMAC key.
    pub secret: Vec<u8>,
    /// Give up on an event (and stop the sink, keeping the checkpoint before
    /// it) after this many attempts.
    pub max_attempts: u32,
    pub backoff: Backoff,
    /// One request's time limit.
    pub timeout: Duration,
}

/// Why an event could not be delivered.
#[derive(Debug, Error)]
pub enum WebhookError {
    #[error("building the http client")]
    Client(#[source] reqwest::Error),
    #[error("the webhook refused event {event_id} with status {status}")]
    Refused { event_id: String, status: u16 },
    #[error("event {event_id} not delivered after {attempts} attempts; last: {last}")]
    GaveUp {
        event_id: String,
        attempts: u32,
        last: String,
    },
}

/// The signature header value for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + bytes.len() * 2);
    hex.push_str("sha256=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Checks a signature header in constant time (what a receiver does).
pub fn verify(secret: &[u8], timestamp: u64, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.strip_prefix("sha256=") else {
        return false;
    };
    if hex.len() != 64 {
        return false;
    }
    let mut tag = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let Some(b) = std::str::from_utf8(chunk)
            .ok()
            .and_then(|s| u8::from_str_radix(s, 16).ok())
        else {
            return false;
        };
        tag[i] = b;
    }
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// A webhook client.
pub(crate) struct Webhook {
    settings: WebhookSettings,
    http: reqwest::Client,
}

impl Webhook {
    pub(crate) fn new(settings: WebhookSettings) -> Result<Webhook, WebhookError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(WebhookError::Client)?;
        Ok(Webhook { settings, http })
    }

    /// POSTs one event until a 2xx; retries network errors, 408, 429 and 5xx.
    pub(crate) async fn post(
        &self,
        seq: u64,
        event_id: &str,
        body: &str,
    ) -> Result<(), WebhookError> {
        let mut last = String::new();
        for attempt in 1..=self.settings.max_attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(self.settings.backoff.delay(attempt - 1)).await;
            }
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let result = self
                .http
                .post(&self.settings.url)
                .header("content-type", "application/json")
                .header("x-sapha-timestamp", timestamp.to_string())
                .header(
                    "x-sapha-signature",
                    sign(&self.settings.secret, timestamp, body.as_bytes()),
                )
                .header("x-sapha-event-id", event_id)
                .header("x-sapha-seq", seq.to_string())
                .body(body.to_owned())
                .send()
                .await;
            match result {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => {
                    let status = r.status().as_u16();
                    if !(status == 408 || status == 429 || status >= 500) {
                        return Err(WebhookError::Refused {
                            event_id: event_id.to_owned(),
                            status,
                        });
                    }
                    last = format!("status {status}");
                }
                Err(e) => last = e.to_string(),
            }
            tracing::warn!(event_id, attempt, error = %last, "webhook delivery failed; retrying");
        }
        Err(WebhookError::GaveUp {
            event_id: event_id.to_owned(),
            attempts: self.settings.max_attempts.max(1),
            last,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_timestamp_dot_body() {
        // HMAC-SHA256("key", "1700000000.{}"), computed independently with openssl:
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac key
        let s = sign(b"key", 1_700_000_000, b"{}");
        assert_eq!(
            s,
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
        assert!(verify(b"key", 1_700_000_000, b"{}", &s));
        assert!(!verify(b"key", 1_700_000_001, b"{}", &s));
        assert!(!verify(b"other", 1_700_000_000, b"{}", &s));
        assert!(!verify(b"key", 1_700_000_000, b"{ }", &s));
        assert!(!verify(b"key", 1_700_000_000, b"{}", "sha256=zz"));
    }
}
