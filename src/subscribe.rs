//! The subscriber subcommands: `tail`, `sink` and `notify`. Flags only; the
//! work is in `sapha-subscribers`.

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use futures::StreamExt;
use sapha_subscribers::client::Backoff;
use sapha_subscribers::sink::{FileSettings, Sink, SinkSettings, WebhookSettings};
use sapha_subscribers::tail::{format_line, FormatOptions, Lang};
use sapha_subscribers::{ClientBuilder, Item, Start};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which hubs to read from.
#[derive(Args, Debug, Clone)]
pub struct HubUrls {
    /// Hub URL (`ws://host:port` or `http://host:port`); repeat or comma-separate
    /// for fail-over between hubs.
    #[arg(
        long = "hub",
        env = "SAPHA_HUB_URL",
        value_delimiter = ',',
        default_value = "ws://127.0.0.1:8080"
    )]
    hubs: Vec<String>,
    /// Longest wait between reconnect attempts, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    max_backoff_ms: u64,
}

impl HubUrls {
    fn client(&self, topics: &[String], start: Start) -> ClientBuilder {
        ClientBuilder::new()
            .urls(self.hubs.iter().cloned())
            .topics(topics.iter().cloned())
            .start(start)
            .backoff(
                Duration::from_millis(100),
                Duration::from_millis(self.max_backoff_ms.max(100)),
            )
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LangArg {
    Th,
    En,
}

/// Where to start without a checkpoint.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// Only new events.
    Live,
    /// Everything the stream still holds.
    Start,
}

impl From {
    fn start(self) -> Start {
        match self {
            From::Live => Start::Live,
            From::Start => Start::Beginning,
        }
    }
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// Topic filters, e.g. `bill.b-2566-0123` or `sitting.*.*.vote` (default: everything).
    #[arg(default_value = ">")]
    topics: Vec<String>,
    #[command(flatten)]
    hub: HubUrls,
    /// Language of the lines.
    #[arg(long, value_enum, default_value = "th")]
    lang: LangArg,
    /// Write numbers in Thai digits (๐-๙).
    #[arg(long)]
    thai_digits: bool,
    /// Print each event as one line of JSON (docs/EVENTS.md), for pipes.
    #[arg(long)]
    json: bool,
    /// Start after this stream sequence instead of live.
    #[arg(long, conflicts_with = "from_start")]
    since: Option<u64>,
    /// Start with everything the stream still holds.
    #[arg(long)]
    from_start: bool,
    /// Print this bill's current stage and timeline from the hub's state API,
    /// then follow the bill from there (no gap, no duplicate). Replaces TOPICS.
    /// A bill the hub does not know yet is waited for (said on stderr), and
    /// shown when it first appears.
    #[arg(long, value_name = "BILL_ID", conflicts_with_all = ["since", "from_start"])]
    bill: Option<String>,
    /// Print what is true now from the hub's state API (the sittings in
    /// progress in full, the bills that moved last), then follow TOPICS live
    /// from that answer's stream position (no gap).
    #[arg(long, conflicts_with_all = ["since", "from_start", "bill"])]
    state: bool,
}

/// How often `tail --bill` asks again for a bill the hub does not know yet.
const BILL_WAIT: Duration = Duration::from_secs(1);

/// How many of the bills that moved last `tail --state` prints.
const STATE_BILLS: usize = 20;

pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let start = match (args.since, args.from_start) {
        (Some(s), _) => Start::After(s),
        (None, true) => Start::Beginning,
        (None, false) => Start::Live,
    };
    let opts = FormatOptions {
        lang: match args.lang {
            LangArg::Th => Lang::Th,
            LangArg::En => Lang::En,
        },
        thai_digits: args.thai_digits,
    };
    let mut items = match &args.bill {
        Some(bill_id) => {
            let Some((bill, items)) = wait_for_bill(&args, bill_id, start).await? else {
                return Ok(());
            };
            if args.json {
                println!("{}", serde_json::to_string(&bill)?);
            } else {
                for line in sapha_subscribers::tail::format_bill(&bill, opts) {
                    println!("{line}");
                }
            }
            items
        }
        None if args.state => {
            let seq = print_state(&args, opts).await?;
            args.hub
                .client(&args.topics, Start::After(seq))
                .subscribe()
                .context("starting the client")?
        }
        None => args
            .hub
            .client(&args.topics, start)
            .subscribe()
            .context("starting the client")?,
    };
    let mut shutdown = std::pin::pin!(crate::shutdown_signal());
    let stdout = std::io::stdout();
    loop {
        let item = tokio::select! {
            item = items.next() => item,
            _ = &mut shutdown => return Ok(()),
        };
        let Some(item) = item else { return Ok(()) };
        let line = match item.context("the hub client stopped")? {
            Item::Event(d) if args.json => d.event.to_json(),
            Item::Event(d) => format_line(&d.event, opts),
            Item::HistoryLost { since, first_seq } => {
                eprintln!("! events after {since} up to {first_seq} are no longer on the hub");
                continue;
            }
            Item::StreamReset { since, first_seq } => {
                eprintln!(
                    "! the stream does not reach {since} (recreated or restored): again from {first_seq}"
                );
                continue;
            }
            Item::Disconnected { url, reason } => {
                eprintln!("! disconnected from {url}: {reason}; reconnecting");
                continue;
            }
            _ => continue,
        };
        let mut out = stdout.lock();
        // A closed pipe (`| head`) ends the tail quietly.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
}

/// Snapshot, then subscribe for `tail --bill`; while the hub answers 404 (no
/// such bill yet) it says so once on stderr and asks again every [`BILL_WAIT`].
/// `None` when stopped (Ctrl-C) while waiting.
async fn wait_for_bill(
    args: &TailArgs,
    bill_id: &str,
    start: Start,
) -> anyhow::Result<
    Option<(
        sapha_proto::projection::BillState,
        sapha_subscribers::EventStream,
    )>,
> {
    let mut said = false;
    let mut shutdown = std::pin::pin!(crate::shutdown_signal());
    loop {
        let client = args.hub.client(&[format!("bill.{bill_id}")], start);
        match sapha_subscribers::snapshot_then_subscribe(client, bill_id).await {
            Ok(found) => return Ok(Some(found)),
            Err(e) if e.is_not_found() => {
                if !said {
                    eprintln!(
                        "! the hub does not know bill {bill_id} yet: waiting for it (asking every {} s; Ctrl-C stops)",
                        BILL_WAIT.as_secs()
                    );
                    said = true;
                }
            }
            Err(e) => return Err(e).context("reading the bill from the hub's state API"),
        }
        tokio::select! {
            _ = tokio::time::sleep(BILL_WAIT) => {}
            _ = &mut shutdown => return Ok(None),
        }
    }
}

/// `tail --state`: prints the sittings in progress and the bills that moved
/// last, and returns the stream position to follow from: the earlier of the
/// two answers' (so nothing after either is missed).
async fn print_state(args: &TailArgs, opts: FormatOptions) -> anyhow::Result<u64> {
    let url = args.hub.hubs.first().context("no hub url given")?;
    let live = sapha_subscribers::fetch_state(url, "/v1/sittings/live")
        .await
        .context("reading the sittings in progress from the hub's state API")?;
    let bills = sapha_subscribers::fetch_state(url, &format!("/v1/bills?limit={STATE_BILLS}"))
        .await
        .context("reading the bills from the hub's state API")?;
    let seq = |v: &serde_json::Value| v["seq"].as_u64().context("an answer without `seq`");
    let at = seq(&live)?.min(seq(&bills)?);
    if args.json {
        let line = serde_json::json!({
            "type": "state", "seq": at, "sittings": live["items"], "bills": bills["items"],
            "bills_total": bills["total"],
        });
        println!("{line}");
        return Ok(at);
    }
    let sittings: Vec<sapha_proto::projection::SittingState> =
        serde_json::from_value(live["items"].clone())
            .context("reading the sittings in progress")?;
    let summaries: Vec<sapha_subscribers::tail::BillSummary> =
        serde_json::from_value(bills["items"].clone()).context("reading the bills")?;
    let total = bills["total"].as_u64().unwrap_or(summaries.len() as u64);
    for line in sapha_subscribers::tail::format_state(at, &sittings, &summaries, total, opts) {
        println!("{line}");
    }
    Ok(at)
}

#[derive(Args, Debug)]
pub struct SinkArgs {
    /// Topic filters (default: the whole stream).
    #[arg(default_value = ">")]
    topics: Vec<String>,
    #[command(flatten)]
    hub: HubUrls,
    /// Directory for the NDJSON files.
    #[arg(long)]
    out: Option<PathBuf>,
    /// File name prefix: `<prefix>-<first seq>.ndjson`.
    #[arg(long, default_value = "events")]
    prefix: String,
    /// Start a new file before one grows past this many bytes.
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    max_file_bytes: u64,
    /// Start a new file after this many seconds.
    #[arg(long)]
    rotate_secs: Option<u64>,
    /// POST each event here, signed with `--webhook-secret`.
    #[arg(long)]
    webhook: Option<String>,
    /// The HMAC-SHA256 key for the webhook signature.
    #[arg(long, env = "SAPHA_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Attempts per event before the sink stops (and resumes there on restart).
    #[arg(long, default_value_t = 10)]
    webhook_attempts: u32,
    /// The checkpoint file (default: `<out>/checkpoint.json`).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Where to start when there is no checkpoint yet.
    #[arg(long, value_enum, default_value = "start")]
    from: From,
    /// Most events per batch (one fsync and one checkpoint per batch).
    #[arg(long, default_value_t = sapha_subscribers::sink::DEFAULT_BATCH)]
    batch: usize,
    /// Stop with an error when the hub no longer holds events the sink needs.
    #[arg(long)]
    fail_on_gap: bool,
    /// Serve the sink's metrics at `http://<addr>/metrics` (OpenMetrics).
    #[arg(long, env = "SAPHA_SINK_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
}

pub async fn sink(args: SinkArgs) -> anyhow::Result<()> {
    let checkpoint = match (&args.checkpoint, &args.out) {
        (Some(c), _) => c.clone(),
        (None, Some(out)) => out.join("checkpoint.json"),
        (None, None) => bail!("give --checkpoint when there is no --out"),
    };
    let webhook = match &args.webhook {
        Some(url) => {
            let Some(secret) = &args.webhook_secret else {
                bail!("--webhook needs --webhook-secret (or SAPHA_WEBHOOK_SECRET)");
            };
            Some(WebhookSettings {
                url: url.clone(),
                secret: secret.as_bytes().to_vec(),
                max_attempts: args.webhook_attempts,
                backoff: Backoff::default(),
                timeout: Duration::from_secs(10),
            })
        }
        None => None,
    };
    let settings = SinkSettings {
        files: args.out.as_ref().map(|dir| FileSettings {
            dir: dir.clone(),
            prefix: args.prefix.clone(),
            max_bytes: args.max_file_bytes,
            max_age: args.rotate_secs.map(Duration::from_secs),
        }),
        webhook,
        checkpoint,
        batch: args.batch,
        fail_on_gap: args.fail_on_gap,
    };
    let sink = Sink::open(settings).context("opening the sink")?;
    let stop_metrics = tokio_util::sync::CancellationToken::new();
    let _stop_metrics = stop_metrics.clone().drop_guard();
    if let Some(addr) = args.metrics_addr {
        let mut registry = sapha_edge::metrics::registry();
        registry.register_collector(Box::new(sink.stats()));
        metrics_server(addr, registry, stop_metrics).await?;
    }
    let start = match sink.position() {
        Some(seq) => Start::After(seq),
        None => args.from.start(),
    };
    tracing::info!(?start, "sink starting");
    let items = args
        .hub
        .client(&args.topics, start)
        .resume_epoch(sink.epoch())
        .subscribe()
        .context("starting the client")?;
    let written = sink.run(items, crate::shutdown_signal()).await?;
    tracing::info!(written, "sink stopped");
    Ok(())
}

/// `sapha notify`: Web Push, LINE and webhook notifications to the followers
/// the hub's follow API stored in NATS (docs/NOTIFY.md). Run several at once:
/// they share the work.
#[derive(Args, Debug)]
pub struct NotifyArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(long, env = "SAPHA_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The event stream.
    #[arg(long, env = "SAPHA_STREAM", default_value = "PARL")]
    stream: String,
    /// The follow store bucket (the hub's `[follow] bucket`).
    #[arg(long, env = "SAPHA_FOLLOWS_BUCKET", default_value = sapha_follows::DEFAULT_BUCKET)]
    follows_bucket: String,
    /// Notify every stored stage change when this notifier's consumer is new
    /// (default: only changes from now on).
    #[arg(long)]
    from_start: bool,
    /// The dashboard's public URL: a notification opens `<url>/?bill=<id>`.
    #[arg(long, env = "SAPHA_DASHBOARD_URL", default_value = "")]
    dashboard_url: String,
    /// The VAPID private key (base64url P-256 scalar) that turns Web Push on.
    /// `sapha notify --new-vapid-key` makes one.
    #[arg(long, env = "SAPHA_VAPID_PRIVATE_KEY", hide_env_values = true)]
    vapid_private_key: Option<String>,
    /// The VAPID contact (`mailto:` or `https:`), sent to push services.
    #[arg(
        long,
        env = "SAPHA_VAPID_SUBJECT",
        default_value = "mailto:admin@localhost"
    )]
    vapid_subject: String,
    /// How long a push service keeps an undelivered message, in seconds (at most 86400).
    #[arg(long, default_value_t = 43_200)]
    push_ttl_secs: u64,
    /// Messages in flight to one push-service host.
    #[arg(long, default_value_t = 64)]
    push_per_host: usize,
    /// The LINE channel access token that turns LINE on.
    #[arg(long, env = "SAPHA_LINE_CHANNEL_TOKEN", hide_env_values = true)]
    line_channel_token: Option<String>,
    /// The LINE Messaging API base URL.
    #[arg(long, env = "SAPHA_LINE_API", default_value = "https://api.line.me")]
    line_api: String,
    /// The app backend's webhook URL (`http://` or `https://`) that turns the webhook channel on.
    #[arg(long, env = "SAPHA_NOTIFY_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The webhook's HMAC key.
    #[arg(
        long,
        env = "SAPHA_NOTIFY_WEBHOOK_SECRET",
        hide_env_values = true,
        default_value = ""
    )]
    webhook_secret: String,
    /// Messages this replica sends at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Followers per job.
    #[arg(long, default_value_t = 250)]
    chunk: usize,
    /// Seconds a job may go without progress before another replica takes it.
    #[arg(long, default_value_t = 30)]
    ack_wait_secs: u64,
    /// Tries of one notification within one delivery of its job.
    #[arg(long, default_value_t = 3)]
    attempts: u32,
    /// Deliveries of a job: at the last, a notification that still fails is
    /// given up. One (stage change, follower) is tried at most
    /// attempts x deliveries times.
    #[arg(long, default_value_t = 6)]
    deliveries: u32,
    /// The first delay before a job with failures comes back, in seconds; it
    /// doubles with each delivery (jittered) up to --retry-max-secs.
    #[arg(long, default_value_t = 30)]
    retry_base_secs: u64,
    /// The longest delay before a job comes back, in seconds.
    #[arg(long, default_value_t = 1800)]
    retry_max_secs: u64,
    /// Consecutive permanent failures (given up, refused, blocked) after
    /// which a Web Push or LINE follower is removed; 0 never removes.
    #[arg(long, default_value_t = 3)]
    remove_after_failures: u32,
    /// Print a new VAPID key pair and exit.
    #[arg(long)]
    new_vapid_key: bool,
    /// Serve the notifier's metrics at `http://<addr>/metrics` (OpenMetrics).
    #[arg(long, env = "SAPHA_NOTIFY_METRICS_ADDR")]
    metrics_addr: Option<SocketAddr>,
    /// The hosts a follower's Web Push endpoint may name, comma-separated:
    /// `host`, or `*.suffix` for any name under it; `*` takes any public host.
    /// Default: the browsers' push services.
    #[arg(
        long,
        env = "SAPHA_NOTIFY_PUSH_HOSTS",
        value_delimiter = ',',
        default_values_t = sapha_follows::DEFAULT_PUSH_HOSTS.map(String::from)
    )]
    push_hosts: Vec<String>,
    /// Private networks (CIDR, comma-separated) the operator's own targets,
    /// `--webhook-url` and `--line-api`, may be on, e.g. `10.0.0.0/8` for a
    /// webhook on the internal network. Never applies to followers' endpoints.
    #[arg(long, env = "SAPHA_NOTIFY_EGRESS_ALLOW_NETS", value_delimiter = ',')]
    egress_allow_net: Vec<ipnet::IpNet>,
    /// Allow `http://` and loopback targets (127.0.0.0/8, ::1, localhost).
    /// For tests on one machine only; never in production.
    #[arg(long)]
    allow_loopback_targets: bool,
}

pub async fn notify(args: NotifyArgs) -> anyhow::Result<()> {
    use sapha_subscribers::notify::{self, Channels, LineSettings, WebPushSettings, WebhookTarget};
    if args.new_vapid_key {
        let (private, public) = notify::generate_vapid_key();
        println!("SAPHA_VAPID_PRIVATE_KEY={private}");
        println!("# public key (browsers get it from the hub's GET /v1/push/key): {public}");
        return Ok(());
    }
    let webpush = args.vapid_private_key.map(|key| WebPushSettings {
        vapid_private_key: key,
        subject: args.vapid_subject.clone(),
        ttl: Duration::from_secs(args.push_ttl_secs.min(86_400)),
        per_host: args.push_per_host,
    });
    let line = args.line_channel_token.map(|token| LineSettings {
        api_base: args.line_api.clone(),
        channel_token: token,
    });
    let webhook = args.webhook_url.map(|url| WebhookTarget {
        url,
        secret: args.webhook_secret.clone().into_bytes(),
    });
    if webpush.is_none() && line.is_none() && webhook.is_none() {
        bail!(
            "no channel is set up: give --vapid-private-key, --line-channel-token or --webhook-url"
        );
    }
    let targets = notify::Targets {
        allow_loopback: args.allow_loopback_targets,
        allow_nets: args.egress_allow_net,
        push_hosts: sapha_follows::PushHosts::from_list(&args.push_hosts),
        lookup: Default::default(),
    };
    let channels = Channels::new(webpush, line, webhook, Duration::from_secs(15), targets)
        .map_err(anyhow::Error::msg)?;
    let settings = notify::NotifySettings {
        stream: args.stream,
        follows_bucket: args.follows_bucket,
        from_start: args.from_start,
        chunk: args.chunk,
        concurrency: args.concurrency,
        ack_wait: Duration::from_secs(args.ack_wait_secs.max(1)),
        dashboard_url: args.dashboard_url,
        attempts: args.attempts.max(1),
        deliveries: args.deliveries.max(1),
        redelivery_backoff: sapha_proto::backoff::Backoff {
            initial: Duration::from_secs(args.retry_base_secs),
            max: Duration::from_secs(args.retry_max_secs.max(args.retry_base_secs)),
        },
        remove_after: args.remove_after_failures,
        ..Default::default()
    };
    let client = notify::connect(&args.nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {}", args.nats_url))?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        stop.cancel();
    });
    let stats = std::sync::Arc::new(notify::NotifyStats::default());
    if let Some(addr) = args.metrics_addr {
        let mut registry = sapha_edge::metrics::registry();
        registry.register_collector(Box::new(stats.clone()));
        metrics_server(addr, registry, shutdown.clone()).await?;
    }
    notify::run(client, settings, channels, stats, shutdown).await?;
    Ok(())
}

/// Binds `addr` and serves `/metrics` from `registry` until `stop`.
async fn metrics_server(
    addr: SocketAddr,
    registry: sapha_edge::metrics::Registry,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics listener on {addr}"))?;
    tracing::info!(addr = %listener.local_addr()?, "serving /metrics");
    tokio::spawn(async move {
        let served =
            sapha_edge::metrics::serve_metrics(listener, registry, stop.cancelled_owned()).await;
        if let Err(e) = served {
            tracing::warn!(error = %e, "the metrics server stopped");
        }
    });
    Ok(())
}
