//! Counts the Kubernetes API requests the operator makes, by verb and resource, into
//! `vitess_operator_kube_requests_total{verb,resource}` ([`crate::process::metrics`]): what a
//! reconcile costs the API server, seen from the only place every request passes through,
//! the kube `Client`'s HTTP stack.

use http::{Method, Request};
use kube::client::ClientBuilder;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the Kubernetes client configuration: {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// A client from the configuration kubectl would use (KUBECONFIG, in-cluster service
/// account, ...) whose every request is counted.
pub async fn counted_client() -> Result<kube::Client, Error> {
    let config = kube::Config::infer().await?;
    let layer = tower::util::MapRequestLayer::new(|request: Request<kube::client::Body>| {
        let (verb, resource) = classify(request.method(), request.uri());
        crate::process::metrics::global().kube_request(verb, &resource);
        request
    });
    Ok(ClientBuilder::try_from(config)?.with_layer(&layer).build())
}

/// The Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
/// `deletecollection`) and resource (`pods`, `vitessshards/status`, ...) of a request; paths
/// outside the resource API (`/version`, discovery) are resource `nonresource`.
pub fn classify(method: &Method, uri: &http::Uri) -> (&'static str, String) {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    // /api/v1/... or /apis/<group>/<version>/...
    let rest = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => &[][..],
    };
    let rest = match rest {
        ["namespaces", _namespace, inner @ ..] if !inner.is_empty() => inner,
        other => other,
    };
    let (resource, named) = match rest {
        [] => ("nonresource".to_string(), false),
        [resource] => (resource.to_string(), false),
        [resource, _name] => (resource.to_string(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
    };
    let watching = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair == "watch=true" || pair == "watch=1")
    });
    let verb = match *method {
        Method::GET if watching => "watch",
        Method::GET if named || resource == "nonresource" => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    (verb, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verb_of(method: Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().unwrap())
    }

    #[test]
    fn names_verbs_and_resources_as_the_api_server_does() {
        let ns = "/api/v1/namespaces/ns";
        let shards = "/apis/planetscale.com/v2/namespaces/ns/vitessshards";
        for (method, uri, verb, resource) in [
            (
                Method::GET,
                format!("{ns}/pods?labelSelector=a%3Db"),
                "list",
                "pods",
            ),
            (Method::GET, format!("{ns}/pods/p1"), "get", "pods"),
            (
                Method::GET,
                format!("{ns}/pods?watch=true&resourceVersion=1"),
                "watch",
                "pods",
            ),
            (
                Method::GET,
                format!("{shards}?&watch=true"),
                "watch",
                "vitessshards",
            ),
            (
                Method::PATCH,
                format!("{shards}/s1?fieldManager=x&force=true"),
                "patch",
                "vitessshards",
            ),
            (
                Method::PATCH,
                format!("{shards}/s1/status"),
                "patch",
                "vitessshards/status",
            ),
            (Method::POST, format!("{ns}/events"), "create", "events"),
            (
                Method::PUT,
                "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l".into(),
                "update",
                "leases",
            ),
            (Method::DELETE, format!("{ns}/pods/p1"), "delete", "pods"),
            (
                Method::DELETE,
                format!("{ns}/pods"),
                "deletecollection",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns".into(),
                "get",
                "namespaces",
            ),
            (Method::GET, "/api/v1/pods?watch=1".into(), "watch", "pods"),
            (Method::GET, "/version".into(), "get", "nonresource"),
        ] {
            assert_eq!(verb_of(method, &uri), (verb, resource.to_string()), "{uri}");
        }
    }
}
