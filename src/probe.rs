//! `sapha probe`: a tiny HTTP GET for container health checks, so an image
//! built `FROM scratch` (no curl, no shell) can still run `HEALTHCHECK`.

use anyhow::{bail, Context};
use clap::Args;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest status line and headers read from the probed server.
const MAX_RESPONSE_HEAD: usize = 8 * 1024;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The plain-HTTP URL to GET; exits 0 on a 2xx answer, 1 otherwise.
    #[arg(default_value = "http://127.0.0.1:8080/healthz")]
    url: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3_000)]
    timeout_ms: u64,
}

pub async fn probe(args: ProbeArgs) -> anyhow::Result<()> {
    let status = tokio::time::timeout(Duration::from_millis(args.timeout_ms), get(&args.url))
        .await
        .with_context(|| format!("no answer from {} in time", args.url))??;
    if !(200..300).contains(&status) {
        bail!("{} answered {status}", args.url);
    }
    Ok(())
}

/// Sends `GET` over HTTP/1.0 and returns the status code.
async fn get(url: &str) -> anyhow::Result<u16> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// URLs can be probed: {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .context("sending the request")?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_RESPONSE_HEAD {
        let n = stream.read(&mut buf).await.context("reading the answer")?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("not an HTTP answer from {url}"))?;
    Ok(status)
}
