//! `sapha hub`: the hub's flags, its config (defaults, file, `SAPHA_HUB__*`
//! environment, flags), `--check-config`, and the wiring of listener, NATS
//! and shutdown around `sapha_hub::run_with_nats`.

use anyhow::Context;
use sapha_hub::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The flags of `sapha hub`. Every key of the config file can also be set as
/// `SAPHA_HUB__SECTION__KEY` (e.g. `SAPHA_HUB__LIMITS__MAX_CONNECTIONS=5000`);
/// precedence: defaults < file < environment < flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HubArgs {
    /// A TOML config file (see hub/hub.example.toml).
    #[arg(long, short = 'c', env = "SAPHA_HUB_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Checks the config in FILE, in place of --config (then the `SAPHA_HUB__*`
    /// environment, then the flags, as a start would), prints a one-line summary
    /// and exits: 0 when it is valid, 1 with the offending key when not. Starts
    /// nothing.
    #[arg(long, value_name = "FILE")]
    pub check_config: Option<PathBuf>,
    /// The address to listen on (overrides `listen`).
    #[arg(long, env = "SAPHA_HUB__LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The NATS URL (overrides `nats.url`).
    #[arg(long, env = "SAPHA_HUB__NATS__URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream (overrides `nats.stream`).
    #[arg(long, env = "SAPHA_HUB__NATS__STREAM")]
    pub stream: Option<String>,
    /// Any other key: `--set limits.max_connections=5000` (repeatable). Each
    /// key is also read from `SAPHA_HUB__<SECTION>__<KEY>`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl HubArgs {
    /// Loads the config: defaults, file, `SAPHA_HUB__*` environment, then these flags.
    pub fn load(&self) -> Result<Config, sapha_hub::config::ConfigError> {
        let mut overrides = Vec::new();
        if let Some(listen) = self.listen {
            overrides.push(format!("listen=\"{listen}\""));
        }
        if let Some(url) = &self.nats_url {
            overrides.push(format!("nats.url={}", toml_string(url)));
        }
        if let Some(stream) = &self.stream {
            overrides.push(format!("nats.stream={}", toml_string(stream)));
        }
        overrides.extend(self.set.iter().cloned());
        let file = self.check_config.as_deref().or(self.config.as_deref());
        Config::load(file, std::env::vars(), &overrides)
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Runs `sapha hub` (or checks its config with `--check-config`).
pub async fn hub(args: HubArgs) -> anyhow::Result<()> {
    if let Some(file) = &args.check_config {
        return check_config(&args, file);
    }
    let config = args.load().context("loading the hub config")?;
    sapha_hub::check(&config).context("checking the hub config")?;
    let listener = sapha_hub::bind(&config)
        .await
        .with_context(|| format!("binding the hub on {}", config.listen))?;
    tracing::info!(listen = %config.listen, reuse_port = config.reuse_port, stream = %config.nats.stream, "hub listening");
    sapha_hub::run_with_nats(config, listener, crate::shutdown_signal())
        .await
        .context("running the hub")
}

/// Loads and checks the config as a start would, without starting.
fn check_config(args: &HubArgs, file: &std::path::Path) -> anyhow::Result<()> {
    let invalid = || format!("the hub config {} is not valid", file.display());
    let config = args.load().with_context(invalid)?;
    sapha_hub::check(&config).with_context(invalid)?;
    println!(
        "{}: valid; listen {}, nats {} stream {}, auth {}, at most {} connections",
        file.display(),
        config.listen,
        config.nats.url,
        config.nats.stream,
        config.auth.mode.name(),
        config.limits.max_connections,
    );
    Ok(())
}
