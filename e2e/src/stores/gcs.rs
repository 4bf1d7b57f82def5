//! The GCS store: a server of Google Cloud Storage's JSON API (fake-gcs-server, started by
//! `e2e/cluster up` on the real node's address), read and written here through that same API,
//! as `gsutil` or a console would show a bucket.
//!
//! And the one part of Google Cloud this machine cannot have: its OAuth token service. Vitess'
//! GCS storage always asks Application Default Credentials for a token before it talks to the
//! store (even an emulator), so a tablet needs credentials whose `token_uri` answers.
//! [`FakeGoogleOAuth`] is that endpoint, a fake by rules: it hands a bearer token for a refresh
//! token grant with the client it was made for, and refuses any other request as Google does.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{StoredObject, percent_encode};
use crate::http_request;

/// Where `e2e/cluster up` starts the GCS server when `E2E_GCS_ENDPOINT` is not set (the real
/// node's address; `e2e/cluster env` prints it).
pub const DEFAULT_GCS_ENDPOINT: &str = "10.244.9.1:26290";
/// The OAuth client the fake token endpoint accepts.
const CLIENT_ID: &str = "e2e-vitess-backups";

/// `host:port` of the GCS server.
pub fn gcs_endpoint() -> String {
    std::env::var("E2E_GCS_ENDPOINT").unwrap_or_else(|_| DEFAULT_GCS_ENDPOINT.to_string())
}

/// Creates bucket `name` (a fresh name per test run).
pub async fn create_bucket(name: &str) -> Result<()> {
    let body = serde_json::json!({ "name": name }).to_string();
    let (code, reply) = http_request(
        &gcs_endpoint(),
        "POST",
        "/storage/v1/b?project=e2e",
        "application/json",
        &body,
    )
    .await?;
    ensure!(
        code == 200,
        "creating bucket {name} on the GCS server at {}: HTTP {code}: {reply}",
        gcs_endpoint()
    );
    Ok(())
}

/// Every object of `bucket` whose name starts with `prefix`, in name order.
pub async fn list_objects(bucket: &str, prefix: &str) -> Result<Vec<StoredObject>> {
    let path = format!("/storage/v1/b/{bucket}/o?prefix={}", percent_encode(prefix));
    let (code, reply) = http_request(&gcs_endpoint(), "GET", &path, "", "").await?;
    ensure!(
        code == 200,
        "listing gs://{bucket}/{prefix}: HTTP {code}: {reply}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&reply).with_context(|| format!("object list {reply:?}"))?;
    let mut objects: Vec<StoredObject> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| {
            Some(StoredObject {
                name: item["name"].as_str()?.to_string(),
                size: item["size"].as_str()?.parse().ok()?,
            })
        })
        .collect();
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(objects)
}

/// A token endpoint of Google's OAuth service, on `address` (`ip:0` for any port), counting
/// the tokens it handed out.
pub struct FakeGoogleOAuth {
    address: String,
    tokens: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeGoogleOAuth {
    /// Listens on `ip` (an address pods reach: the real node's) on a free port.
    pub async fn start(ip: &str) -> Result<Self> {
        let listener = TcpListener::bind((ip, 0))
            .await
            .with_context(|| format!("binding the fake OAuth token endpoint on {ip}"))?;
        let address = listener.local_addr()?.to_string();
        let tokens = Arc::new(AtomicUsize::new(0));
        let counter = tokens.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    // A client that hangs up mid-request gets nothing; others are answered.
                    let _ = answer_token_request(stream, &counter).await;
                });
            }
        });
        Ok(Self {
            address,
            tokens,
            task,
        })
    }

    /// Application Default Credentials (an `authorized_user` file, as `gcloud auth
    /// application-default login` writes) whose tokens come from this endpoint.
    pub fn credentials_json(&self) -> String {
        serde_json::json!({
            "type": "authorized_user",
            "client_id": CLIENT_ID,
            "client_secret": "e2e-not-a-secret",
            "refresh_token": "e2e-refresh-token",
            "token_uri": format!("http://{}/token", self.address),
        })
        .to_string()
    }

    /// How many tokens were handed out.
    pub fn tokens_issued(&self) -> usize {
        self.tokens.load(Ordering::SeqCst)
    }
}

impl Drop for FakeGoogleOAuth {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request and answers it: `POST /token` with `grant_type=refresh_token` and our
/// client gets a bearer token for an hour; anything else an OAuth error.
async fn answer_token_request(mut stream: TcpStream, tokens: &AtomicUsize) -> Result<()> {
    let request = tokio::time::timeout(Duration::from_secs(10), read_request(&mut stream))
        .await
        .context("the token request took more than 10 s")??;
    let (head, body) = request.split_once("\r\n\r\n").unwrap_or((&request, ""));
    let form: Vec<(&str, &str)> = body
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let field = |name: &str| form.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let (status, reply) = if !head.starts_with("POST /token ") {
        ("404 Not Found", serde_json::json!({"error": "not_found"}))
    } else if field("grant_type") != Some("refresh_token") {
        (
            "400 Bad Request",
            serde_json::json!({"error": "unsupported_grant_type"}),
        )
    } else if field("client_id") != Some(CLIENT_ID) {
        (
            "401 Unauthorized",
            serde_json::json!({"error": "invalid_client"}),
        )
    } else {
        let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
        (
            "200 OK",
            serde_json::json!({
                "access_token": format!("e2e-token-{n}"),
                "token_type": "Bearer",
                "expires_in": 3600,
            }),
        )
    };
    let reply = reply.to_string();
    stream
        .write_all(
            format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{reply}",
                reply.len()
            )
            .as_bytes(),
        )
        .await?;
    Ok(())
}

/// An HTTP request's head and its body (as long as its Content-Length says).
async fn read_request(stream: &mut TcpStream) -> Result<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("connection closed mid-request");
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(text.into_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_token_endpoint_answers_only_its_client_refresh_grant() {
        let oauth = FakeGoogleOAuth::start("127.0.0.1").await.unwrap();
        let credentials: serde_json::Value =
            serde_json::from_str(&oauth.credentials_json()).unwrap();
        let uri = credentials["token_uri"].as_str().unwrap();
        let address = uri
            .strip_prefix("http://")
            .unwrap()
            .strip_suffix("/token")
            .unwrap();
        let post = |body: &'static str| {
            let address = address.to_string();
            async move {
                let mut stream = TcpStream::connect(&address).await.unwrap();
                stream
                    .write_all(
                        format!(
                            "POST /token HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await
                    .unwrap();
                let mut out = String::new();
                stream.read_to_string(&mut out).await.unwrap();
                out
            }
        };
        let granted =
            post("grant_type=refresh_token&client_id=e2e-vitess-backups&refresh_token=x").await;
        assert!(granted.starts_with("HTTP/1.1 200"), "{granted}");
        assert!(
            granted.contains("\"access_token\":\"e2e-token-1\""),
            "{granted}"
        );
        let other_client = post("grant_type=refresh_token&client_id=someone").await;
        assert!(other_client.starts_with("HTTP/1.1 401"), "{other_client}");
        let other_grant = post("grant_type=password&client_id=e2e-vitess-backups").await;
        assert!(other_grant.starts_with("HTTP/1.1 400"), "{other_grant}");
        assert_eq!(oauth.tokens_issued(), 1);
    }
}
