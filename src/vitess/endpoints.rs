//! Where each cluster's vtctld is, and a cache of clients so that a channel outlives a
//! reconcile.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use crate::desired::defaults::GRPC_PORT;
use crate::domain::names;
use vtctld_client::{Error, Tls, Vtctld};

/// Where each cluster's vtctld is: `{names::cluster::vtctld_service(cluster)}.{namespace}.svc:15999`
/// by default, or an override `NAMESPACE/CLUSTER=HOST:PORT` (for operators running outside the
/// cluster: development, e2e). `*=HOST:PORT` means every cluster without its own override.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    overrides: HashMap<(String, String), String>,
    every: Option<String>,
}

impl Endpoints {
    /// Parses `NAMESPACE/CLUSTER=HOST:PORT` and `*=HOST:PORT` overrides (the later of two for
    /// the same cluster wins).
    pub fn parse(overrides: &[String]) -> Result<Self, Error> {
        let mut endpoints = Endpoints::default();
        for entry in overrides {
            let invalid = |message: &str| Error::InvalidAddress {
                address: entry.clone(),
                message: message.to_string(),
            };
            let expected = "expected NAMESPACE/CLUSTER=HOST:PORT or *=HOST:PORT";
            let (key, address) = entry.split_once('=').ok_or_else(|| invalid(expected))?;
            let (key, address) = (key.trim(), address.trim());
            match address.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
                _ => return Err(invalid("the address must be HOST:PORT")),
            }
            if key == "*" {
                endpoints.every = Some(address.to_string());
                continue;
            }
            match key.split_once('/') {
                Some((namespace, cluster))
                    if !namespace.is_empty() && !cluster.is_empty() && !cluster.contains('/') =>
                {
                    endpoints.overrides.insert(
                        (namespace.to_string(), cluster.to_string()),
                        address.to_string(),
                    );
                }
                _ => return Err(invalid(expected)),
            }
        }
        Ok(endpoints)
    }

    /// `HOST:PORT` of the vtctld of `cluster` in `namespace`.
    pub fn address(&self, namespace: &str, cluster: &str) -> String {
        self.overrides
            .get(&(namespace.to_string(), cluster.to_string()))
            .or(self.every.as_ref())
            .cloned()
            .unwrap_or_else(|| {
                format!(
                    "{}.{namespace}.svc:{GRPC_PORT}",
                    names::cluster::vtctld_service(cluster)
                )
            })
    }
}

/// Cache of clients by (address, TLS) so a channel is reused across reconciles.
#[derive(Debug, Default)]
pub struct Clients {
    endpoints: Endpoints,
    cache: Mutex<HashMap<(String, Option<Tls>), Vtctld>>,
}

impl Clients {
    pub fn new(endpoints: Endpoints) -> Self {
        // The process' metrics observe every vtctld call from now on.
        crate::process::metrics::global();
        Self {
            endpoints,
            cache: Mutex::default(),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The client of a cluster's vtctld, made on first use. Needs a Tokio runtime.
    pub fn get(&self, namespace: &str, cluster: &str, tls: Option<&Tls>) -> Result<Vtctld, Error> {
        let address = self.endpoints.address(namespace, cluster);
        let key = (address, tls.cloned());
        // A panic elsewhere while holding the lock leaves a usable map.
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = cache.get(&key) {
            return Ok(client.clone());
        }
        let client = Vtctld::connect_lazy(&key.0, tls)?;
        cache.insert(key, client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn default_address_is_the_vtctld_service_grpc_port() {
        let e = Endpoints::parse(&[]).unwrap();
        assert_eq!(
            e.address("ns", "example"),
            format!("{}.ns.svc:15999", names::cluster::vtctld_service("example"))
        );
    }

    #[test]
    fn overrides_by_cluster_then_for_every_cluster() {
        let e = Endpoints::parse(&strings(&[
            "*=127.0.0.1:25999",
            "ns/example=10.0.0.1:15999",
        ]))
        .unwrap();
        assert_eq!(e.address("ns", "example"), "10.0.0.1:15999");
        assert_eq!(e.address("other", "example"), "127.0.0.1:25999");
        let e = Endpoints::parse(&strings(&["ns/a=h:1"])).unwrap();
        assert_eq!(e.address("ns", "a"), "h:1");
        assert!(e.address("ns", "b").ends_with(".ns.svc:15999"));
    }

    #[test]
    fn bad_overrides_are_named_in_the_error() {
        for bad in [
            "ns/a",
            "a=h:1",
            "ns/=h:1",
            "/a=h:1",
            "ns/a=h",
            "ns/a=h:x",
            "ns/a/b=h:1",
        ] {
            let err = Endpoints::parse(&strings(&[bad])).unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn clients_share_a_client_per_address_and_tls() {
        let clients = Clients::new(Endpoints::parse(&strings(&["*=127.0.0.1:1"])).unwrap());
        let a = clients.get("ns", "a", None).unwrap();
        let b = clients.get("ns", "b", None).unwrap();
        assert_eq!(a.address(), b.address());
        let tls = Tls {
            ca: Vec::new(),
            cert: None,
            key: None,
            server_name: Some("vtctld".into()),
        };
        clients.get("ns", "a", Some(&tls)).unwrap();
        assert_eq!(clients.cache.lock().unwrap().len(), 2);
    }
}
