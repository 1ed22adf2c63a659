//! Snapshot, then subscribe: read what is true now from a hub's state API at a
//! stream position, then follow every change after that position, with no gap
//! and no duplicate (docs/STATE.md).

use super::{ClientBuilder, ClientError, EventStream, Start};
use sapha_proto::projection::BillState;
use serde::Deserialize;

/// The HTTP base of a hub (`http://h:p`) from the URL a client was given.
fn http_base(url: &str) -> String {
    let url = url
        .replacen("wss://", "https://", 1)
        .replacen("ws://", "http://", 1);
    match url.find("/v1/") {
        Some(i) => url[..i].to_owned(),
        None => url.trim_end_matches('/').to_owned(),
    }
}

#[derive(Deserialize)]
struct BillAnswer {
    seq: u64,
    bill: BillState,
}

/// Reads `GET /v1/bills/{bill_id}` from the hub at `url`: the bill and the
/// stream position it reflects. A bill the hub does not know is an error for
/// which [`ClientError::is_not_found`] holds.
pub async fn fetch_bill(url: &str, bill_id: &str) -> Result<(BillState, u64), ClientError> {
    let answer = fetch_state(url, &format!("/v1/bills/{bill_id}")).await?;
    let at = format!("{}/v1/bills/{bill_id}", http_base(url));
    let mut answer: BillAnswer =
        serde_json::from_value(answer).map_err(|e| ClientError::State {
            url: at,
            status: None,
            message: e.to_string(),
        })?;
    answer.bill.restore();
    Ok((answer.bill, answer.seq))
}

/// Reads one state API path (`/v1/sittings/live`, `/v1/bills?limit=20`) from
/// the hub at `url`, as JSON. Every answer carries its stream position, `seq`.
pub async fn fetch_state(url: &str, path: &str) -> Result<serde_json::Value, ClientError> {
    let at = format!("{}{path}", http_base(url));
    let failed = |status: Option<u16>, e: &dyn std::fmt::Display| ClientError::State {
        url: at.clone(),
        status,
        message: e.to_string(),
    };
    let response = reqwest::get(&at).await.map_err(|e| failed(None, &e))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(failed(Some(status.as_u16()), &format!("{status}: {body}")));
    }
    response.json().await.map_err(|e| failed(None, &e))
}

/// The bill now, and a stream of every event on `bill.<id>` after it: apply
/// each stage event to the bill with [`BillState::apply`].
///
/// `client` carries the hub URLs and the reconnect settings; its topics and
/// start are set here.
pub async fn snapshot_then_subscribe(
    client: ClientBuilder,
    bill_id: &str,
) -> Result<(BillState, EventStream), ClientError> {
    let url = client
        .config
        .urls
        .first()
        .ok_or(ClientError::NoUrl)?
        .clone();
    let (bill, seq) = fetch_bill(&url, bill_id).await?;
    let mut client = client;
    client.config.topics.clear();
    let stream = client
        .topic(format!("bill.{bill_id}"))
        .start(Start::After(seq))
        .subscribe()?;
    Ok((bill, stream))
}

#[cfg(test)]
mod tests {
    use super::http_base;

    #[test]
    fn the_state_api_is_at_the_hubs_http_base() {
        assert_eq!(http_base("ws://h:8080/v1/ws"), "http://h:8080");
        assert_eq!(http_base("wss://hub.example/v1/ws"), "https://hub.example");
        assert_eq!(http_base("http://h:8080/"), "http://h:8080");
    }
}
