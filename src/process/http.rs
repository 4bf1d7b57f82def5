//! The `run` process' HTTP endpoints: `/metrics` (Prometheus), `/healthz` (the process
//! answers) and `/readyz` (it reached the API server and knows whether it leads).
//!
//! Deliberately tiny: probes and scrapers send one small GET, so a minimal HTTP/1.1
//! responder on a tokio listener (one request per connection, `Connection: close`) does the
//! job without a web framework.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request head larger than this is refused (probes send a few hundred bytes).
const MAX_HEAD: usize = 8 * 1024;
/// A client that sends no complete request head within this is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// What `/readyz` reports; set by `run` as it starts.
#[derive(Debug, Default)]
pub struct Health {
    /// The API server answered.
    connected: AtomicBool,
    /// This process knows whether it leads (it leads, waits as a follower, or election is off).
    leader_known: AtomicBool,
}

impl Health {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn set_connected(&self) {
        self.connected.store(true, Ordering::Relaxed);
    }

    pub fn set_leader_known(&self) {
        self.leader_known.store(true, Ordering::Relaxed);
    }

    /// Ready: connected and the leader state is known. A follower is ready too: it is
    /// healthy and standing by, and a Deployment rollout must not wait for it to lead.
    pub fn ready(&self) -> bool {
        self.connected.load(Ordering::Relaxed) && self.leader_known.load(Ordering::Relaxed)
    }
}

/// Binds `address` (`127.0.0.1:0` picks a free port) and returns the listener and the
/// address actually bound, which `run` logs so tests can find it.
pub async fn bind(address: &str) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind {
            address: address.into(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Bind {
        address: address.into(),
        source,
    })?;
    Ok((listener, local))
}

/// Answers requests on `listener` forever.
pub async fn serve(listener: TcpListener, health: Arc<Health>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let health = health.clone();
                tokio::spawn(async move {
                    if let Err(err) = answer(stream, &health).await {
                        tracing::debug!("http: {err}");
                    }
                });
            }
            Err(err) => {
                tracing::warn!("http: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, health: &Health) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(head) => head?,
        Err(_) => return Ok(()),
    };
    let (status, content_type, body) = respond(&head, health);
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads up to the end of the request head (the empty line).
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Status line, content type and body for a request head.
fn respond(head: &str, health: &Health) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "only GET\n".into());
    }
    match path {
        "/healthz" => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" if health.ready() => ("200 OK", TEXT, "ok\n".into()),
        "/readyz" => ("503 Service Unavailable", TEXT, "not ready\n".into()),
        "/metrics" => match crate::process::metrics::global().encode() {
            Ok(text) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(err) => ("500 Internal Server Error", TEXT, format!("{err}\n")),
        },
        _ => ("404 Not Found", TEXT, "not found\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(address: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_health_readiness_and_metrics() {
        let health = Health::new();
        let (listener, address) = bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(serve(listener, health.clone()));

        assert!(
            get(address, "/healthz")
                .await
                .starts_with("HTTP/1.1 200 OK")
        );
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 503"));
        health.set_connected();
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 503"));
        health.set_leader_known();
        assert!(get(address, "/readyz").await.starts_with("HTTP/1.1 200 OK"));

        crate::process::metrics::global().set_leader(true);
        let metrics = get(address, "/metrics?x=1").await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
        assert!(metrics.contains("vitess_operator_leader 1"), "{metrics}");
        assert!(metrics.ends_with("# EOF\n"), "{metrics}");

        assert!(get(address, "/nope").await.starts_with("HTTP/1.1 404"));
    }

    #[tokio::test]
    async fn refuses_a_busy_port_with_its_address() {
        let (_listener, address) = bind("127.0.0.1:0").await.unwrap();
        let err = bind(&address.to_string()).await.unwrap_err();
        assert!(err.to_string().contains(&address.to_string()), "{err}");
    }
}
