//! The pending set: connections with no request in progress, oldest first,
//! under the caps of [`crate::EdgeLimits`], and which of them a cap may close.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Whether the socket `fd` holds bytes the server has not read yet (a
/// request head that arrived while its task waited for a turn): such a
/// connection is not idle, whatever its age. Peeks one byte without
/// blocking; EOF, an error or nothing waiting are all "no".
pub(crate) fn has_unread(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv writes at most one byte into a local; MSG_PEEK leaves it
    // in the socket and MSG_DONTWAIT never blocks. The fd belongs to a
    // connection still in the pending set (it leaves the set before its
    // socket is closed); were it reused meanwhile, the peek would only judge
    // another socket's readability, never read or change anything.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n > 0
}

/// The pending caps that apply to one address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) per_ip: usize,
    pub(crate) total: usize,
    /// Younger connections are never closed by a cap.
    pub(crate) min_age: Duration,
}

/// One connection with no request in progress.
pub(crate) struct Entry {
    pub(crate) ip: IpAddr,
    /// Cancelled to close it.
    pub(crate) close: CancellationToken,
    /// When it entered the set (accepted, or its last request ended).
    pub(crate) since: Instant,
    /// Its socket, to look for unread bytes ([`has_unread`]).
    pub(crate) fd: RawFd,
}

/// Connections with no request in progress, oldest first.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) next_id: u64,
    /// By id; ids grow with `since`, so the first entry is the oldest.
    pub(crate) order: BTreeMap<u64, Entry>,
    /// Each IP's pending ids, oldest first.
    pub(crate) per_ip: HashMap<IpAddr, VecDeque<u64>>,
    /// Addresses left over their cap (their connections were too young to
    /// close), for [`Edge::trim_over`].
    pub(crate) over: std::collections::HashSet<IpAddr>,
}

impl Pending {
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Adds a connection from `ip` (closed by cancelling `close`), first
    /// making room for it under the caps ([`Pending::trim`]). Returns its id
    /// and how many were closed.
    pub(crate) fn admit(
        &mut self,
        ip: IpAddr,
        close: CancellationToken,
        fd: RawFd,
        caps: Caps,
        now: Instant,
        unread: &dyn Fn(RawFd) -> bool,
    ) -> (u64, usize) {
        let evicted = self.trim(ip, caps, 1, now, unread);
        let id = self.next_id;
        self.next_id += 1;
        self.order.insert(
            id,
            Entry {
                ip,
                close,
                since: now,
                fd,
            },
        );
        let count = {
            let q = self.per_ip.entry(ip).or_default();
            q.push_back(id);
            q.len()
        };
        if count > caps.per_ip || self.order.len() > caps.total {
            self.over.insert(ip);
        }
        (id, evicted)
    }

    /// Closes connections until `room` more fit under the caps: the oldest
    /// of `ip`'s while it has more than `per_ip - room`, then the oldest of
    /// any address while there are more than `total - room`. Only a
    /// connection pending for at least `min_age` with no unread bytes may be
    /// closed; when there is none, the count stays over the cap (and `ip` is
    /// trimmed again later). Returns how many were closed.
    pub(crate) fn trim(
        &mut self,
        ip: IpAddr,
        caps: Caps,
        room: usize,
        now: Instant,
        unread: &dyn Fn(RawFd) -> bool,
    ) -> usize {
        let closable = |e: &Entry| now.duration_since(e.since) >= caps.min_age;
        self.over.remove(&ip);
        let mut evicted = 0;
        let per_ip = caps.per_ip.saturating_sub(room);
        while self.per_ip.get(&ip).is_some_and(|q| q.len() > per_ip) {
            let victim = self.per_ip.get(&ip).and_then(|q| {
                q.iter()
                    .copied()
                    .take_while(|id| self.order.get(id).is_some_and(closable))
                    .find(|id| self.order.get(id).is_some_and(|e| !unread(e.fd)))
            });
            let Some(victim) = victim else {
                self.over.insert(ip);
                break;
            };
            self.close(victim);
            evicted += 1;
        }
        let total = caps.total.saturating_sub(room);
        while self.order.len() > total {
            let victim = self
                .order
                .iter()
                .take_while(|(_, e)| closable(e))
                .find(|(_, e)| !unread(e.fd))
                .map(|(&id, _)| id);
            let Some(victim) = victim else {
                self.over.insert(ip);
                break;
            };
            self.close(victim);
            evicted += 1;
        }
        evicted
    }

    /// Closes the oldest connection with no unread bytes, else the oldest of
    /// all, whatever its age; false when there is none.
    pub(crate) fn close_for_descriptor(&mut self, unread: &dyn Fn(RawFd) -> bool) -> bool {
        let victim = self
            .order
            .iter()
            .find(|(_, e)| !unread(e.fd))
            .or_else(|| self.order.first_key_value())
            .map(|(&id, _)| id);
        match victim {
            Some(id) => {
                self.close(id);
                true
            }
            None => false,
        }
    }

    /// Removes `id` and cancels its token.
    pub(crate) fn close(&mut self, id: u64) {
        if let Some(e) = self.remove(id) {
            e.close.cancel();
        }
    }

    /// Removes `id` without closing it (a request began, or it closed).
    pub(crate) fn leave(&mut self, id: u64) {
        self.remove(id);
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.order.remove(&id)?;
        if let Some(q) = self.per_ip.get_mut(&e.ip) {
            q.retain(|&i| i != id);
            if q.is_empty() {
                self.per_ip.remove(&e.ip);
            }
        }
        Some(e)
    }
}
