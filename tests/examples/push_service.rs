//! A local RFC 8030 push service for the browser test (scripts/browser-test.sh):
//! it stands in for the browser vendor's push service, which headless Chromium
//! here cannot reach. It prints one subscription's JSON on its first line
//! (for the page to be handed), then serves, on the port given, `GET /received`:
//! the messages it accepted, each decrypted with the subscription's private key
//! as a browser would, and the VAPID claims it verified.
//!
//!     cargo run -p sapha-tests --example push_service -- <port for /received>

use axum::routing::get;
use sapha_tests::push_service::PushService;
use std::io::Write;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("usage: push_service <port for /received>");
    let push = Arc::new(PushService::start().await);
    let subscription = push.subscribe();
    println!("{}", subscription.to_json());
    std::io::stdout().flush().expect("stdout");
    let received = {
        let push = push.clone();
        get(move || {
            let push = push.clone();
            async move {
                let list: Vec<serde_json::Value> = push
                    .received()
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "payload": String::from_utf8_lossy(&m.payload),
                            "ttl": m.ttl,
                            "urgency": m.urgency,
                            "topic": m.topic,
                            "claims": m.claims,
                        })
                    })
                    .collect();
                let rejected: Vec<String> =
                    push.rejected().iter().map(|r| r.reason.clone()).collect();
                axum::Json(serde_json::json!({ "received": list, "rejected": rejected }))
            }
        })
    };
    let app = axum::Router::new().route("/received", received);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("binding /received");
    axum::serve(listener, app).await.expect("serving /received");
}
