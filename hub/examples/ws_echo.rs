//! An echo server on the hub's own WebSocket stack, for the Autobahn test
//! suite (scripts/autobahn.sh), which needs a peer that echoes.
//!
//! `cargo run --release -p sapha-hub --example ws_echo -- 127.0.0.1:9001`
//!
//! The same as `/v1/ws` below the protocol: axum's upgrade over tungstenite,
//! the hub's accept loop (`sapha-edge`), the default `[websocket]` buffers and
//! `limits.hard_max_frame_bytes`, and the hub's close handling (a client's
//! close frame is answered by flushing tungstenite's reply). What it does not
//! run is Sapha's request protocol, which Autobahn does not speak.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use sapha_hub::Config;
use std::sync::Arc;

async fn echo(upgrade: WebSocketUpgrade) -> Response {
    let config = Config::default();
    upgrade
        .read_buffer_size(config.websocket.read_buffer_bytes)
        .write_buffer_size(config.websocket.write_buffer_bytes)
        .max_message_size(config.limits.hard_max_frame_bytes)
        .max_frame_size(config.limits.hard_max_frame_bytes)
        .on_upgrade(serve)
}

async fn serve(socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    while let Some(Ok(msg)) = stream.next().await {
        let answer = match msg {
            Message::Text(_) | Message::Binary(_) => msg,
            Message::Ping(_) | Message::Pong(_) => continue,
            Message::Close(_) => break,
        };
        if sink.send(answer).await.is_err() {
            return;
        }
    }
    // As the hub's writer does: flush tungstenite's answer to the close frame.
    let _ = sink.flush().await;
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("ws_echo listening on {}", listener.local_addr()?);
    let router = Router::new().route("/", get(echo));
    let edge = Arc::new(sapha_edge::Edge::new(
        Config::default().limits.edge(&Default::default()),
        0,
    ));
    sapha_edge::serve(listener, router, edge, Default::default()).await
}
