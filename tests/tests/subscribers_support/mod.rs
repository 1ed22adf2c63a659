//! Shared by the `subscribers_*` tests: a TCP proxy whose connections can be
//! cut, an HTTP receiver standing in for a webhook or push gateway, a
//! background publisher, and the `sapha` binary.
#![allow(dead_code)]

use crate::hub_support::Publisher;
use axum::http::HeaderMap;
use sapha_proto::Event;
use std::net::SocketAddr;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------- proxy

/// Forwards TCP to a hub; [`Proxy::cut`] drops every open connection (the
/// client sees its connection vanish, as when a network path fails).
pub struct Proxy {
    pub addr: SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { addr, cut, task }
    }

    /// Drops every connection open now.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------- receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// An HTTP server on port 0 that records every POST and answers 200.
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let store = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push(Received { headers, body });
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, got, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------- publishing

/// Publishes `make(i)` for i = 0.. in the background until stopped (or
/// `max` events), pausing `pace` between events.
pub struct Background {
    stop: Arc<AtomicBool>,
    pub published: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<(u64, String)>>,
}

impl Background {
    pub fn start(
        publisher: &Publisher,
        max: usize,
        pace: Duration,
        make: impl Fn(usize) -> Event + Send + 'static,
    ) -> Background {
        let js = publisher.js.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let published = Arc::new(AtomicU64::new(0));
        let (stop2, published2) = (stop.clone(), published.clone());
        let task = tokio::spawn(async move {
            let p = Publisher { js };
            let mut out = Vec::new();
            for i in 0..max {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let e = make(i);
                let seq = p.publish(&e).await;
                out.push((seq, e.event_id.clone()));
                published2.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(pace).await;
            }
            out
        });
        Background {
            stop,
            published,
            task,
        }
    }

    pub fn count(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Stops and returns (stream seq, event id) of everything published, in order.
    pub async fn finish(self) -> Vec<(u64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

// ---------------------------------------------------------------- the binary

#[allow(unused_imports)]
pub use sapha_tests::sapha_bin;
