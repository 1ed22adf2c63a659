//! The NDJSON source: one event per line from a file or stdin, through the
//! pipeline in order, with a progress bar for long files. The scenario player
//! uses the same loop with a [`Pacer`].

use crate::pipeline::{Outcome, Pipeline};
use crate::player::Pacer;
use indicatif::{ProgressBar, ProgressStyle};
use sapha_log::EventLog;
use sapha_proto::Event;
use std::future::Future;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Longest line we read; a longer one is rejected, not buffered.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// One rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    pub event_id: Option<String>,
    pub code: String,
    pub message: String,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub stored: usize,
    pub duplicates: usize,
    pub rejected: Vec<LineError>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} stored, {} duplicates, {} rejected",
            self.stored,
            self.duplicates,
            self.rejected.len()
        )
    }
}

/// Reads NDJSON from `reader` and submits each event in order. Blank lines are
/// skipped. `total_lines` sizes the progress bar (hidden when stderr is not a
/// terminal). Stops early, between events, when `stop` resolves.
pub async fn publish_ndjson<L: EventLog>(
    pipeline: &Pipeline<L>,
    reader: impl AsyncBufRead + Unpin,
    total_lines: Option<u64>,
    mut pacer: Option<Pacer>,
    source: &str,
    stop: impl Future<Output = ()>,
) -> std::io::Result<Report> {
    let progress = match total_lines {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} events {wide_bar} {per_sec} eta {eta}")
            .expect("a valid template"),
    );
    let mut report = Report::default();
    let mut lines = reader.lines();
    let mut line_no = 0;
    tokio::pin!(stop);
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = &mut stop => break,
        };
        let Some(line) = line else { break };
        line_no += 1;
        progress.inc(1);
        if line.trim().is_empty() {
            continue;
        }
        let reject = |code: &str, message: String, event_id: Option<String>| LineError {
            line: line_no,
            event_id,
            code: code.to_owned(),
            message,
        };
        if line.len() > MAX_LINE_BYTES {
            report.rejected.push(reject(
                "line_too_long",
                format!("{} bytes", line.len()),
                None,
            ));
            continue;
        }
        let event = match Event::from_json(&line) {
            Ok(event) => event,
            Err(e) => {
                pipeline.metrics().rejected(source, e.code());
                report.rejected.push(reject(e.code(), e.to_string(), None));
                continue;
            }
        };
        if let Some(pacer) = pacer.as_mut() {
            pacer.wait_for(event.occurred_at).await;
        }
        let event_id = event.event_id.clone();
        match pipeline.submit(event, source).await {
            Ok(Outcome::Stored { .. }) => report.stored += 1,
            Ok(Outcome::Duplicate) => report.duplicates += 1,
            Err(e) => {
                tracing::warn!(line = line_no, event_id = %event_id, code = e.code(), error = %e, "event rejected");
                report
                    .rejected
                    .push(reject(e.code(), e.to_string(), Some(event_id)));
            }
        }
    }
    progress.finish_and_clear();
    Ok(report)
}
