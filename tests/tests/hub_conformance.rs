//! RFC 6455 conformance of the hub's WebSocket server role, with raw bytes on
//! a TCP socket (a library client would refuse to send what is tested here):
//! the handshake key, the close handshake for valid and forbidden codes, and
//! how a client that just drops its socket is counted.

mod hub_support;

use hub_support::*;
use sapha_tests::NatsServer;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn handshake(key: &str) -> String {
    format!(
        "GET /v1/ws?topics=bill.%3E HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    )
}

/// Reads until the end of the HTTP response head; the head, and what came after.
async fn read_head(tcp: &mut TcpStream) -> (String, Vec<u8>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = got.split_off(end + 4);
            return (String::from_utf8_lossy(&got).into_owned(), rest);
        }
        let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "closed before the response head ended");
        got.extend_from_slice(&buf[..n]);
    }
}

/// A masked client frame.
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads server frames until a close frame; its payload, or `None` when the
/// TCP connection ended (or nothing came in time) without one.
async fn close_frame(tcp: &mut TcpStream, mut buffered: Vec<u8>) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    loop {
        // One whole frame in the buffer?
        if buffered.len() >= 2 {
            let opcode = buffered[0] & 0x0f;
            let (len, at) = match buffered[1] & 0x7f {
                126 if buffered.len() >= 4 => {
                    (u16::from_be_bytes([buffered[2], buffered[3]]) as usize, 4)
                }
                126 => (usize::MAX, 0),
                127 => panic!("no frame here is that large"),
                n => (n as usize, 2),
            };
            if len != usize::MAX && buffered.len() >= at + len {
                let payload = buffered[at..at + len].to_vec();
                buffered.drain(..at + len);
                if opcode == 0x8 {
                    return Some(payload);
                }
                continue;
            }
        }
        match tokio::time::timeout(WAIT, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buffered.extend_from_slice(&buf[..n]),
        }
    }
}

/// Whether the hub ended the TCP connection (EOF or reset) in time.
async fn tcp_ends(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 256];
    let drained = async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, drained).await.is_ok()
}

async fn open(hub: &TestHub) -> (TcpStream, Vec<u8>) {
    let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
    tcp.write_all(handshake(KEY).as_bytes()).await.unwrap();
    let (head, rest) = read_head(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    (tcp, rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_16_bytes_of_base64_gets_400_with_the_json_error() {
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    for key in ["abc", "dGhlIHNhbXBsZQ==", "!!!!!!!!!!!!!!!!!!!!!!!!"] {
        let mut tcp = TcpStream::connect(hub.addr).await.unwrap();
        tcp.write_all(handshake(key).as_bytes()).await.unwrap();
        let (head, mut body) = read_head(&mut tcp).await;
        assert!(head.starts_with("HTTP/1.1 400"), "key {key:?}: {head}");
        // The connection stays open (keep-alive): read the body by its length.
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_owned())
            })
            .and_then(|v| v.parse().ok())
            .expect("a content-length");
        let mut buf = [0u8; 1024];
        while body.len() < length {
            let n = tokio::time::timeout(WAIT, tcp.read(&mut buf))
                .await
                .expect("the body in time")
                .unwrap();
            assert!(n > 0, "closed before the body ended");
            body.extend_from_slice(&buf[..n]);
        }
        let json: serde_json::Value = serde_json::from_slice(&body).expect("a json body");
        assert_eq!(json["code"], "bad_handshake", "key {key:?}");
    }
    // A handshake without the upgrade headers gets the JSON error too.
    let answer = reqwest::get(hub.http("/v1/ws")).await.unwrap();
    assert!(answer.status().is_client_error());
    let json: serde_json::Value = answer.json().await.expect("a json body");
    assert_eq!(json["code"], "bad_handshake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_close_is_answered_with_a_close_frame_then_the_connection_ends() {
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    // (the client's close payload, the code the hub must answer with)
    let mut cases: Vec<(Vec<u8>, u16)> = vec![
        (1000u16.to_be_bytes().to_vec(), 1000),
        ([&1001u16.to_be_bytes()[..], b"bye"].concat(), 1001),
        (4000u16.to_be_bytes().to_vec(), 4000),
    ];
    // Codes RFC 6455 section 7.4 forbids on the wire: 1002 (protocol error).
    for code in [999u16, 1005, 1006, 1015, 5000] {
        cases.push((code.to_be_bytes().to_vec(), 1002));
    }
    for (payload, want) in cases {
        let (mut tcp, rest) = open(&hub).await;
        tcp.write_all(&client_frame(0x8, &payload)).await.unwrap();
        let answer = close_frame(&mut tcp, rest).await;
        let code = answer
            .as_deref()
            .filter(|p| p.len() >= 2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]));
        assert_eq!(code, Some(want), "client close {payload:?}");
        assert!(tcp_ends(&mut tcp).await, "the hub ends the TCP connection");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_drops_its_socket_is_counted_as_dropped_not_as_a_protocol_error() {
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let (tcp, _) = open(&hub).await;
    drop(tcp);
    let counted = sapha_tests::wait_until(WAIT, || async {
        hub.metric("sapha_hub_disconnects_total{reason=\"dropped\"}")
            .await
            .is_some_and(|n| n >= 1)
    })
    .await;
    assert!(counted, "the drop is counted as dropped");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        hub.metric("sapha_hub_disconnects_total{reason=\"protocol_error\"}")
            .await
            .unwrap_or(0),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_get_the_json_error_body() {
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let http = reqwest::Client::new();
    let cases = [
        (http.get(hub.http("/v2/nothing")), 404, "not_found"),
        (http.post(hub.http("/healthz")), 405, "method_not_allowed"),
    ];
    for (request, status, code) in cases {
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status().as_u16(), status);
        let json: serde_json::Value = answer.json().await.expect("a json body");
        assert_eq!(json["code"], code);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_echoed_byte_for_byte() {
    let nats = NatsServer::start();
    let _stream = Publisher::new(&nats).await;
    let hub = TestHub::start(test_config(&nats)).await;
    let mut client = Client::connect(&hub.ws_url("/v1/ws")).await;
    client.welcome().await;
    for id in [
        "18446744073709551617",
        "1.50",
        "\"a\\u00e9\"",
        "[1, {\"b\": null}]",
    ] {
        client
            .send_text(&format!("{{\"op\":\"ping\",\"id\":{id}}}"))
            .await;
        let answer = client.next_message().await.expect("an answer");
        let text = answer.into_text().unwrap();
        assert!(
            text.contains(&format!("\"id\":{id}")),
            "id {id} came back in {text}"
        );
    }
}
