//! Shared by the `security_*` tests: event builders for in-camera sittings, an
//! SSE reader, and raw-socket helpers for abuse. Built on `hub_support`.
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

/// One parsed SSE message.
#[derive(Debug, Default, Clone)]
pub struct SseMessage {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// Reads SSE messages from a streaming response.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// Opens `url`; the response must be a 200 event stream.
    pub async fn open(url: &str, headers: &[(&str, String)]) -> SseReader {
        let mut req = reqwest::Client::new().get(url);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next message with data (comments and `retry:` are skipped).
    pub async fn next(&mut self) -> SseMessage {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut msg = SseMessage::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        msg.id = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        msg.event = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        msg.data.push_str(v);
                    }
                }
                if !msg.data.is_empty() {
                    return msg;
                }
                continue;
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("sse data in time")
                .unwrap()
                .expect("the stream goes on");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// The event ids of the next `n` events.
    pub async fn event_ids(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        while out.len() < n {
            let m = self.next().await;
            if m.event.as_deref() == Some("event") {
                let v: serde_json::Value = serde_json::from_str(&m.data).unwrap();
                out.push(v["event"]["event_id"].as_str().unwrap().to_owned());
            }
        }
        out
    }
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
