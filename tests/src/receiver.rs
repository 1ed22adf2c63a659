//! What the local test receivers ([`crate::push_service`], [`crate::line_service`])
//! share: an axum server on a random loopback port that stops when its owner is
//! dropped, and a counter that tests can wait on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// An axum server on `127.0.0.1:0`, aborted on drop.
pub(crate) struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds a random loopback port and serves `router` on the current runtime.
    pub(crate) async fn start(router: axum::Router) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("local address of the listener");
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                eprintln!("test receiver on {addr} stopped: {error}");
            }
        });
        Server { addr, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A count of accepted messages that tests can wait on.
#[derive(Default)]
pub(crate) struct Arrivals {
    count: AtomicUsize,
    changed: Notify,
}

impl Arrivals {
    /// Counts one more accepted message and wakes the waiters.
    pub(crate) fn add(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// How many messages were accepted.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` messages were accepted; false after `timeout`.
    pub(crate) async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registers before the check, so an `add` in between is not missed.
            changed.as_mut().enable();
            if self.count() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.count() >= n;
            }
        }
    }
}

/// Locks `mutex`, also after a panic elsewhere (the data stays usable).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A random UUID (version 4) in its usual text form.
pub(crate) fn random_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Whether `text` is a UUID in its usual text form (8-4-4-4-12 hex digits).
pub(crate) fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && groups
            .iter()
            .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_uuids_are_uuids() {
        let id = random_uuid();
        assert!(is_uuid(&id), "{id}");
        assert!(!is_uuid("not-a-uuid"));
        assert!(!is_uuid("0123456789abcdef0123456789abcdef"));
        assert!(!is_uuid("0123456g-89ab-cdef-0123-456789abcdef"));
    }
}
