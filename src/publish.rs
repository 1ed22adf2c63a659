//! The publisher's subcommands: `publish`, `ingest` and `play`.

use anyhow::{bail, Context};
use clap::Args;
use sapha_publisher::file::{publish_ndjson, Report};
use sapha_publisher::ingest::{self, IngestConfig, SharedTokens, Tokens};
use sapha_publisher::jetstream::{JetStreamLog, StreamSettings};
use sapha_publisher::metrics::Metrics;
use sapha_publisher::pipeline::{Pipeline, RetryPolicy};
use sapha_publisher::player::{Pacer, Pacing};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::BufReader;

/// Where JetStream is and how its stream is configured.
#[derive(Args, Debug, Clone)]
pub struct NatsArgs {
    /// NATS server URL.
    #[arg(long, env = "SAPHA_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// JetStream stream name.
    #[arg(long, env = "SAPHA_STREAM", default_value = "PARL")]
    stream: String,
    /// Keep events this many days.
    #[arg(long, env = "SAPHA_MAX_AGE_DAYS", default_value_t = 365)]
    max_age_days: u64,
    /// Keep at most this many bytes of events.
    #[arg(long, env = "SAPHA_MAX_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    max_bytes: i64,
    /// Window in which a resent event id is recognised as a duplicate, in seconds.
    #[arg(long, env = "SAPHA_DUPLICATE_WINDOW_SECS", default_value_t = 7200)]
    duplicate_window_secs: u64,
    /// Stream replicas (3 on a cluster).
    #[arg(long, env = "SAPHA_REPLICAS", default_value_t = 1)]
    replicas: usize,
    /// Give up on an event after retrying an unavailable NATS this many seconds.
    #[arg(long, env = "SAPHA_GIVE_UP_SECS", default_value_t = 120)]
    give_up_secs: u64,
    /// Most events waiting for the log at once; more are refused with 503.
    #[arg(long, env = "SAPHA_BACKLOG", default_value_t = 10_000)]
    backlog: usize,
}

impl NatsArgs {
    async fn pipeline(&self) -> anyhow::Result<Arc<Pipeline<JetStreamLog>>> {
        let settings = StreamSettings {
            name: self.stream.clone(),
            max_age: Duration::from_secs(self.max_age_days * 24 * 3600),
            max_bytes: self.max_bytes,
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            replicas: self.replicas,
            ..StreamSettings::default()
        };
        let log = JetStreamLog::open(&self.nats_url, &settings)
            .await
            .context("preparing the JetStream stream")?;
        tracing::info!(url = %self.nats_url, stream = %settings.name, "JetStream stream ready");
        let retry = RetryPolicy {
            give_up_after: Duration::from_secs(self.give_up_secs),
            ..RetryPolicy::default()
        };
        Ok(Arc::new(Pipeline::new(
            log,
            retry,
            self.backlog,
            Arc::new(Metrics::default()),
        )))
    }
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// NDJSON file of events, or `-` for stdin.
    #[arg(long = "from", value_name = "FILE")]
    from: PathBuf,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Address to listen on.
    #[arg(long, env = "SAPHA_INGEST_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// Bearer tokens, `name:secret,name2:secret2` (secrets of 16+ bytes). Never logged.
    #[arg(
        long,
        env = "SAPHA_INGEST_TOKENS",
        hide_env_values = true,
        required_unless_present = "tokens_file"
    )]
    tokens: Option<String>,
    /// A file of tokens, one `name:secret` per line, re-read when it changes
    /// (rotate or revoke tokens without a restart).
    #[arg(long, env = "SAPHA_INGEST_TOKENS_FILE", conflicts_with = "tokens")]
    tokens_file: Option<PathBuf>,
    /// Largest request body in bytes.
    #[arg(long, env = "SAPHA_INGEST_MAX_BODY", default_value_t = 1024 * 1024)]
    max_body_bytes: usize,
    /// Most events per batch.
    #[arg(long, env = "SAPHA_INGEST_MAX_BATCH", default_value_t = 1000)]
    max_batch: usize,
    /// Longest time a request body may take once its headers are accepted, in
    /// milliseconds; slower gets 408 body_timeout.
    #[arg(long, env = "SAPHA_INGEST_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// Most request bodies read at once from one IP; more get 429 too_many_bodies.
    #[arg(long, env = "SAPHA_INGEST_MAX_BODIES_PER_IP", default_value_t = 4)]
    max_bodies_per_ip: usize,
    /// Longest time a connection with no request in progress may take to send a
    /// complete request head, in milliseconds (from accept and between requests).
    #[arg(
        long,
        env = "SAPHA_INGEST_HEADER_READ_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    header_read_timeout_ms: u64,
    /// Most connections with no request in progress (none sent yet, or idle
    /// between keep-alive requests); over it the oldest is closed.
    #[arg(
        long,
        env = "SAPHA_INGEST_MAX_PENDING_CONNECTIONS",
        default_value_t = 1024
    )]
    max_pending_connections: usize,
    /// The same, per client IP.
    #[arg(
        long,
        env = "SAPHA_INGEST_MAX_PENDING_CONNECTIONS_PER_IP",
        default_value_t = 64
    )]
    max_pending_connections_per_ip: usize,
    /// Descriptors kept free below `ulimit -n`; at the rest, a new connection
    /// takes the place of the oldest with no request in progress, or with none
    /// is closed at accept.
    #[arg(long, env = "SAPHA_INGEST_FD_RESERVE", default_value_t = 64)]
    fd_reserve: usize,
    #[command(flatten)]
    nats: NatsArgs,
}

#[derive(Args, Debug)]
pub struct PlayArgs {
    /// Scenario NDJSON files (see scenarios/), merged into one feed in the
    /// order the events happened (by `occurred_at`, each file keeping its own
    /// order), as `sapha demo` does.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Speed-up over real time: 1 is real time with each wait capped at
    /// `--max-gap-secs` (the shipped scenarios then take 5 to 48 minutes), 10
    /// ten times faster; `max` (or 0) plays as fast as the pipeline
    /// acknowledges, one event after another, in order.
    #[arg(long, default_value = "1", value_parser = parse_speed)]
    speed: f64,
    /// Longest single wait between two events, in seconds.
    #[arg(long, default_value_t = 10.0)]
    max_gap_secs: f64,
    #[command(flatten)]
    nats: NatsArgs,
}

/// Parses `--speed`: a speed-up factor of 0 or more, or `max` (stored as 0,
/// which [`Pacing`] reads as no waiting at all).
pub(crate) fn parse_speed(s: &str) -> Result<f64, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(0.0);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a speed: give a factor (1 = real time, 10, 0.5) or `max`"
        )),
    }
}

fn finish(report: &Report) -> anyhow::Result<()> {
    finish_with(report, |line| line.to_string())
}

/// [`finish`], saying where each rejected line is with `place` (a line number
/// of the feed, for `play`: the file and its line).
fn finish_with(report: &Report, place: impl Fn(usize) -> String) -> anyhow::Result<()> {
    if crate::log_is_json() {
        for r in &report.rejected {
            tracing::warn!(line = %place(r.line), event_id = r.event_id.as_deref().unwrap_or("-"), code = %r.code, error = %r.message, "event rejected");
        }
        tracing::info!(
            stored = report.stored,
            duplicates = report.duplicates,
            rejected = report.rejected.len(),
            "done"
        );
        if !report.rejected.is_empty() {
            bail!("{} events were rejected", report.rejected.len());
        }
        return Ok(());
    }
    for r in &report.rejected {
        eprintln!(
            "line {}: {} {}: {}",
            place(r.line),
            r.event_id.as_deref().unwrap_or("-"),
            r.code,
            r.message
        );
    }
    eprintln!("{report}");
    if !report.rejected.is_empty() {
        bail!("{} events were rejected", report.rejected.len());
    }
    Ok(())
}

async fn count_lines(path: &PathBuf) -> Option<u64> {
    let text = tokio::fs::read(path).await.ok()?;
    Some(text.iter().filter(|&&b| b == b'\n').count() as u64)
}

pub async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let pipeline = args.nats.pipeline().await?;
    let report = if args.from.as_os_str() == "-" {
        let stdin = BufReader::new(tokio::io::stdin());
        publish_ndjson(
            &pipeline,
            stdin,
            None,
            None,
            "stdin",
            crate::shutdown_signal(),
        )
        .await?
    } else {
        let total = count_lines(&args.from).await;
        let file = tokio::fs::File::open(&args.from)
            .await
            .with_context(|| format!("opening {}", args.from.display()))?;
        publish_ndjson(
            &pipeline,
            BufReader::new(file),
            total,
            None,
            "file",
            crate::shutdown_signal(),
        )
        .await?
    };
    finish(&report)
}

pub async fn play(args: PlayArgs) -> anyhow::Result<()> {
    let pipeline = args.nats.pipeline().await?;
    let pacing = Pacing {
        speed: args.speed,
        max_gap: Duration::from_secs_f64(args.max_gap_secs),
    };
    // Each file's lines with where they came from, merged by `occurred_at`.
    let mut files = Vec::new();
    for (f, path) in args.files.iter().enumerate() {
        let text = tokio::fs::read_to_string(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        files.push(feed_lines(f, &text));
    }
    let feed = crate::demo::merge_by(files, |l| l.at);
    tracing::info!(
        files = args.files.len(),
        events = feed.len(),
        speed = args.speed,
        "playing scenarios in the order the events happened"
    );
    let mut text = String::new();
    for line in &feed {
        text.push_str(&line.text);
        text.push('\n');
    }
    let report = publish_ndjson(
        &pipeline,
        text.as_bytes(),
        Some(feed.len() as u64),
        Some(Pacer::new(pacing)),
        "scenario",
        crate::shutdown_signal(),
    )
    .await?;
    finish_with(&report, |n| match feed.get(n.wrapping_sub(1)) {
        Some(l) => format!("{}:{}", args.files[l.file].display(), l.line),
        None => n.to_string(),
    })
}

/// One non-blank line of a scenario file, for merging files by time.
struct FeedLine {
    /// The file's index in the arguments, and the line's 1-based number in it.
    file: usize,
    line: usize,
    /// `occurred_at` in milliseconds; `None` when the line does not parse (it
    /// then goes as soon as it is next in its file, and the pipeline says why).
    at: Option<i64>,
    text: String,
}

fn feed_lines(file: usize, text: &str) -> Vec<FeedLine> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| FeedLine {
            file,
            line: i + 1,
            at: sapha_proto::Event::from_json(l)
                .ok()
                .map(|e| e.occurred_at.timestamp_millis()),
            text: l.to_owned(),
        })
        .collect()
}

pub async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    let tokens = match (&args.tokens, &args.tokens_file) {
        (Some(spec), _) => Tokens::parse(spec)
            .map_err(anyhow::Error::msg)
            .context("--tokens")?,
        (None, Some(path)) => Tokens::read_file(path).map_err(anyhow::Error::msg)?,
        (None, None) => bail!("give --tokens or --tokens-file"),
    };
    let tokens = SharedTokens::new(tokens);
    if let Some(path) = args.tokens_file.clone() {
        let every = Duration::from_secs(1);
        tokio::spawn(
            tokens
                .clone()
                .watch_file(path, every, std::future::pending()),
        );
    }
    let pipeline = args.nats.pipeline().await?;
    let config = IngestConfig {
        tokens,
        max_body_bytes: args.max_body_bytes,
        max_batch: args.max_batch,
        body_timeout: Duration::from_millis(args.body_timeout_ms.max(1)),
        max_bodies_per_ip: args.max_bodies_per_ip,
        edge: sapha_edge::EdgeLimits {
            request_deadline: Duration::from_millis(args.header_read_timeout_ms.max(1)),
            max_pending: args.max_pending_connections,
            max_pending_per_ip: args.max_pending_connections_per_ip,
            fd_reserve: args.fd_reserve,
            exempt: Vec::new(),
            ..sapha_edge::EdgeLimits::default()
        },
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding the ingest listener on {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "ingest listening");
    ingest::serve(listener, pipeline, config, crate::shutdown_signal())
        .await
        .context("serving ingest")
}
