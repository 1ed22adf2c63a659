//! The live dashboard and the JavaScript client, compiled into the binary and
//! served as they are: no build step, no files to deploy next to the hub.
//!
//! - `/` and `/index.html`: the dashboard page (hub/web/index.html).
//! - `/dashboard.js`, `/dashboard.css`: the page's script and style.
//! - `/sapha.js`: the JavaScript client (docs/JS_CLIENT.md), an ES module that
//!   apps may import straight from the hub.
//! - `/sw.js`: the dashboard's service worker (Web Push notifications of followed
//!   bills). Served at the root so that its scope is the whole origin.
//!
//! Merge [`routes`] into the hub's router; it needs no state.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// How long browsers and proxies may keep a file. Short, so that a new hub
/// version reaches every open dashboard within a minute of a reload.
const CACHE_CONTROL: &str = "public, max-age=60";

/// The service worker is revalidated on every update check, so that a new
/// version replaces the installed one as soon as a page registers it again.
const SW_CACHE_CONTROL: &str = "no-cache";

/// What the page may load and where it may connect: its own files only, and
/// this hub or another one (`?hub=` in the dashboard's URL): the other hub's
/// WebSocket and its state and follow APIs over HTTP(S), which the page calls
/// with `fetch` (any host, as for WebSockets: `?hub=` may name any hub).
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; connect-src 'self' ws: wss: http: https:; \
     img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One file of hub/web.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
}

const INDEX: Asset = Asset {
    body: include_str!("../web/index.html"),
    content_type: "text/html; charset=utf-8",
    cache_control: CACHE_CONTROL,
};
const DASHBOARD_JS: Asset = Asset {
    body: include_str!("../web/dashboard.js"),
    content_type: "text/javascript; charset=utf-8",
    cache_control: CACHE_CONTROL,
};
const DASHBOARD_CSS: Asset = Asset {
    body: include_str!("../web/dashboard.css"),
    content_type: "text/css; charset=utf-8",
    cache_control: CACHE_CONTROL,
};
const SAPHA_JS: Asset = Asset {
    body: include_str!("../web/sapha.js"),
    content_type: "text/javascript; charset=utf-8",
    cache_control: CACHE_CONTROL,
};
const SERVICE_WORKER: Asset = Asset {
    body: include_str!("../web/sw.js"),
    content_type: "text/javascript; charset=utf-8",
    cache_control: SW_CACHE_CONTROL,
};

impl Asset {
    fn respond(&self) -> Response {
        let mut response = (
            [
                (header::CONTENT_TYPE, self.content_type),
                (header::CACHE_CONTROL, self.cache_control),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            self.body,
        )
            .into_response();
        if self.content_type.starts_with("text/html") {
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            response.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
        }
        response
    }
}

/// The dashboard's routes. Generic over the router state so that it merges into
/// any router: `Router::new().route(...).merge(web::routes())`.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(|| async { INDEX.respond() }))
        .route("/index.html", get(|| async { INDEX.respond() }))
        .route("/dashboard.js", get(|| async { DASHBOARD_JS.respond() }))
        .route("/dashboard.css", get(|| async { DASHBOARD_CSS.respond() }))
        .route("/sapha.js", get(|| async { SAPHA_JS.respond() }))
        .route("/sw.js", get(|| async { SERVICE_WORKER.respond() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// GETs `path` from a server on `addr` with plain HTTP/1.1; the raw response.
    async fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn serves_each_file_with_its_type() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app: Router = routes();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        for (path, content_type, needle) in [
            (
                "/",
                "text/html",
                "<script type=\"module\" src=\"./dashboard.js\">",
            ),
            ("/index.html", "text/html", "sapha"),
            ("/sapha.js", "text/javascript", "export function connect"),
            ("/dashboard.js", "text/javascript", "from './sapha.js'"),
            ("/dashboard.css", "text/css", "--"),
        ] {
            let response = get_raw(addr, path).await;
            let head = response.to_ascii_lowercase();
            assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
            assert!(
                head.contains(&format!("content-type: {content_type}; charset=utf-8")),
                "{path}"
            );
            assert!(head.contains("cache-control: public, max-age=60"), "{path}");
            assert!(response.contains(needle), "{path} lacks {needle}");
        }
        assert!(get_raw(addr, "/")
            .await
            .to_ascii_lowercase()
            .contains("content-security-policy: default-src 'self'"));
        // The service worker: at the root (its scope is the whole origin), and
        // revalidated on every update check.
        let sw = get_raw(addr, "/sw.js").await;
        let head = sw.to_ascii_lowercase();
        assert!(sw.starts_with("HTTP/1.1 200"), "{sw}");
        assert!(head.contains("content-type: text/javascript; charset=utf-8"));
        assert!(head.contains("cache-control: no-cache"));
        assert!(sw.contains("addEventListener('push'"));
        assert!(sw.contains("addEventListener('notificationclick'"));
        assert!(get_raw(addr, "/nope.js").await.starts_with("HTTP/1.1 404"));
        server.abort();
    }
}
