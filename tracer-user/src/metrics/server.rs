//! The `/metrics` endpoint: a deliberately small HTTP/1.1 server (GET and HEAD, one request per
//! connection) on the session's own async runtime, so serving a scrape never competes with the
//! ring-buffer drain for a thread.

use std::{
    net::{SocketAddr, TcpListener as StdListener, ToSocketAddrs as _},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    time::timeout,
};

use super::Metrics;
use crate::error::TracerError;

/// Longest accepted request head; scrapers send a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// `PORT`, `:PORT` (both on 127.0.0.1: loopback unless told otherwise) or `HOST:PORT`.
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let bad = |why: &str| format!("invalid metrics address {text:?}: {why} (try 127.0.0.1:9464)");
    let text = text.trim();
    let with_host = match text.strip_prefix(':').unwrap_or(text).parse::<u16>() {
        Ok(port) => format!("127.0.0.1:{port}"),
        Err(_) => text.to_owned(),
    };
    with_host
        .to_socket_addrs()
        .map_err(|error| bad(&error.to_string()))?
        .next()
        .ok_or_else(|| bad("it names no address"))
}

/// A bound, not yet serving, metrics listener: binding first lets a bad or busy address fail
/// the command before anything is attached.
pub struct MetricsListener {
    listener: StdListener,
    pub address: SocketAddr,
}

impl MetricsListener {
    pub fn bind(address: SocketAddr) -> Result<Self, TracerError> {
        let failed = |source| TracerError::MetricsAddress { address, source };
        let listener = StdListener::bind(address).map_err(failed)?;
        listener.set_nonblocking(true).map_err(failed)?;
        let address = listener.local_addr().map_err(failed)?;
        Ok(Self { listener, address })
    }

    /// Serves `metrics` until the runtime stops; call from within the session's runtime.
    pub fn serve(self, metrics: Arc<Metrics>) -> Result<(), TracerError> {
        let address = self.address;
        let listener = TcpListener::from_std(self.listener)
            .map_err(|source| TracerError::MetricsAddress { address, source })?;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(respond(stream, Arc::clone(&metrics)));
                    }
                    Err(error) => log::warn!("metrics: accepting a connection: {error}"),
                }
            }
        });
        Ok(())
    }
}

async fn respond(mut stream: TcpStream, metrics: Arc<Metrics>) {
    let Ok(Some(head)) = timeout(REQUEST_TIMEOUT, read_head(&mut stream)).await else {
        return;
    };
    let response = route(&head, &metrics);
    // A client that went away is not tracer's problem.
    let delivered = stream.write_all(&response).await.is_ok();
    let _ = stream.shutdown().await;
    if delivered && head.starts_with("GET /metrics") {
        metrics.scrape_delivered();
    }
}

/// Reads up to the blank line that ends the request head; `None` if the client closed or sent
/// too much.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut buffer).await.ok()?;
        if read == 0 || head.len() + read > MAX_REQUEST {
            return None;
        }
        head.extend_from_slice(&buffer[..read]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The whole HTTP response to a request head.
fn route(head: &str, metrics: &Metrics) -> Vec<u8> {
    let mut request_line = head.lines().next().unwrap_or("").split_whitespace();
    let method = request_line.next().unwrap_or("");
    let path = request_line
        .next()
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", Metrics::content_type(), metrics.render()),
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "tracer: metrics are at /metrics\n".to_owned(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; metrics are at /metrics\n".to_owned(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD are served\n".to_owned(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        }
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(
            parse_address("9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            parse_address(":9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            parse_address("0.0.0.0:80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            parse_address("[::1]:9").unwrap(),
            "[::1]:9".parse().unwrap()
        );
        for bad in ["", "host", "1.2.3.4:99999", "127.0.0.1:port"] {
            assert!(parse_address(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn response(head: &str) -> String {
        String::from_utf8(route(head, &Metrics::new())).unwrap()
    }

    #[test]
    fn serves_the_exposition_at_metrics_only() {
        let ok = response("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4"),
            "{ok}"
        );
        let (head, body) = ok.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("Content-Length: {}", body.len())),
            "{ok}"
        );
        assert!(body.contains("tracer_build_info{version="), "{body}");

        let head_only = response("HEAD /metrics?x=1 HTTP/1.1\r\n\r\n");
        assert!(head_only.starts_with("HTTP/1.1 200 OK"), "{head_only}");
        assert!(head_only.ends_with("\r\n\r\n"), "{head_only}");

        assert!(response("GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let post = response("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        assert!(post.contains("Allow: GET, HEAD"), "{post}");
        assert!(response("\r\n\r\n").starts_with("HTTP/1.1 405"));
    }
}
