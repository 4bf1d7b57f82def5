//! The S3 store: a server of the S3 API (gofakes3, MIT, started by `e2e/cluster up` on the real
//! node's address), reached as a user reaches any S3-compatible store: an endpoint, path-style
//! buckets, and a shared credentials file in the location's `authSecret`. The server checks no
//! signature; the credentials only have to be well-formed for the AWS SDK in Vitess.

use anyhow::{Result, ensure};

use super::{StoredObject, percent_encode};
use crate::http_request;

/// Where `e2e/cluster up` starts the S3 server when `E2E_S3_ENDPOINT` is not set.
pub const DEFAULT_S3_ENDPOINT: &str = "10.244.9.1:26291";
/// The region the location names (the AWS SDK wants one; the server ignores it).
pub const REGION: &str = "us-east-1";

/// `host:port` of the S3 server.
pub fn s3_endpoint() -> String {
    std::env::var("E2E_S3_ENDPOINT").unwrap_or_else(|_| DEFAULT_S3_ENDPOINT.to_string())
}

/// An AWS shared credentials file (what `AWS_SHARED_CREDENTIALS_FILE` names).
pub fn credentials_file() -> String {
    "[default]\naws_access_key_id = e2e\naws_secret_access_key = e2e-not-a-secret\n".to_string()
}

/// Creates bucket `name` (CreateBucket, path style).
pub async fn create_bucket(name: &str) -> Result<()> {
    let (code, reply) = http_request(&s3_endpoint(), "PUT", &format!("/{name}"), "", "").await?;
    ensure!(
        code == 200,
        "creating bucket {name} on the S3 server at {}: HTTP {code}: {reply}",
        s3_endpoint()
    );
    Ok(())
}

/// Every object of `bucket` whose key starts with `prefix` (ListObjectsV2, every page), in
/// key order.
pub async fn list_objects(bucket: &str, prefix: &str) -> Result<Vec<StoredObject>> {
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut path = format!("/{bucket}?list-type=2&prefix={}", percent_encode(prefix));
        if let Some(token) = &token {
            path.push_str(&format!("&continuation-token={}", percent_encode(token)));
        }
        let (code, reply) = http_request(&s3_endpoint(), "GET", &path, "", "").await?;
        ensure!(
            code == 200,
            "listing s3://{bucket}/{prefix}: HTTP {code}: {reply}"
        );
        for contents in elements(&reply, "Contents") {
            let (Some(key), Some(size)) = (
                elements(contents, "Key").next(),
                elements(contents, "Size").next(),
            ) else {
                continue;
            };
            objects.push(StoredObject {
                name: unescape(key),
                size: size.parse()?,
            });
        }
        token = elements(&reply, "NextContinuationToken")
            .next()
            .map(unescape)
            .filter(|t| !t.is_empty());
        if token.is_none() {
            break;
        }
    }
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(objects)
}

/// The text of every `<tag>…</tag>` element of `xml`, in order (S3 replies are flat enough).
fn elements<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = start + rest[start..].find(&close)?;
        let text = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(text)
    })
}

/// XML's five entities back to their characters.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reply_gives_keys_and_sizes() {
        let reply = "<ListBucketResult><Name>b</Name><Contents><Key>e2e/a/MANIFEST</Key>\
                     <Size>12</Size></Contents><Contents><Key>e2e/a&amp;b</Key><Size>3</Size>\
                     </Contents><IsTruncated>false</IsTruncated></ListBucketResult>";
        let keys: Vec<&str> = elements(reply, "Contents")
            .filter_map(|c| elements(c, "Key").next())
            .collect();
        assert_eq!(keys, ["e2e/a/MANIFEST", "e2e/a&amp;b"]);
        assert_eq!(unescape(keys[1]), "e2e/a&b");
        assert_eq!(elements(reply, "Size").collect::<Vec<_>>(), ["12", "3"]);
    }
}
