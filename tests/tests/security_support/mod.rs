//! Shared by the `security_*` tests: event builders for in-camera sittings and
//! raw-socket helpers for abuse. Built on `hub_support` (which has the SSE reader).
#![allow(dead_code)]

use crate::hub_support::*;
use sapha_proto::event::{Body, Chamber, Phase};
use sapha_proto::Event;

/// A lifecycle event of a sitting with the given phase.
pub fn lifecycle(chamber: Chamber, id: &str, phase: Phase) -> Event {
    let mut e = sitting_event(chamber, id);
    if let Body::SittingLifecycle(l) = &mut e.body {
        l.phase = phase;
        l.outcome = None;
    }
    e
}

/// The event ids of the next `n` events on a JSON WebSocket client.
pub async fn ws_event_ids(c: &mut Client, n: usize) -> Vec<String> {
    ids(&c.events(n).await)
}

/// Raises the soft limit of open files to the hard limit (abuse tests open many sockets).
pub fn raise_nofile() {
    #[cfg(target_os = "linux")]
    // SAFETY: getrlimit/setrlimit with a pointer to a local struct of the kernel's layout.
    unsafe {
        let mut lim = libc_rlimit { cur: 0, max: 0 };
        if getrlimit(7, &mut lim) == 0 && lim.cur < lim.max {
            lim.cur = lim.max.min(65_536);
            let _ = setrlimit(7, &lim);
        }
    }
}

#[cfg(target_os = "linux")]
#[repr(C)]
struct libc_rlimit {
    cur: u64,
    max: u64,
}

#[cfg(target_os = "linux")]
extern "C" {
    fn getrlimit(resource: i32, rlim: *mut libc_rlimit) -> i32;
    fn setrlimit(resource: i32, rlim: *const libc_rlimit) -> i32;
}

/// A line of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
pub fn proc_status_kib(pid: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
