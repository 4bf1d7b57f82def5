//! A stand-in for what each vttablet does on start, for tests whose vtctld is the fake
//! (`vtctld_fake`): once a tablet pod is Ready, its tablet is registered in
//! the fake's topology as a REPLICA (or RDONLY, by pool type), in the keyspace and shard its
//! labels name.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use tokio::sync::Mutex;
use vitess_operator::vitess::{Alias, TabletType};
use vtctld_fake::FakeVtctld;

use crate::{Operator, is_ready, with_operator_at};

/// The fake, shared between a test and its tablet agent; `None` while it is down.
pub type SharedFake = Arc<Mutex<Option<FakeVtctld>>>;

/// Changes how the shared fake answers (nothing while it is down).
pub async fn set_fake_mode(fake: &SharedFake, mode: vtctld_fake::Mode) {
    if let Some(fake) = fake.lock().await.as_ref() {
        fake.set_mode(mode);
    }
}

/// The shard's primary as the shared fake's topology has it (`None` while the fake is down or
/// the shard has none).
pub async fn fake_primary(fake: &SharedFake, keyspace: &str, shard: &str) -> Option<String> {
    fake.lock()
        .await
        .as_ref()
        .and_then(|f| f.primary(keyspace, shard))
        .map(|a| a.to_string())
}

/// What a tablet pod's labels say about its tablet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TabletLabels {
    pub alias: Alias,
    pub tablet_type: TabletType,
    pub keyspace: String,
    /// The shard in Vitess form (`-`, `-80`), from the label's safe form (`x-x`, `x-80`).
    pub shard: String,
}

/// The tablet of a tablet pod, from its labels.
pub fn tablet_of(pod: &Pod) -> Option<TabletLabels> {
    let labels = pod.labels();
    let cell = labels.get("planetscale.com/cell")?;
    let uid = labels.get("planetscale.com/tablet-uid")?.parse().ok()?;
    // The type the pool's tablets start as (`--init-tablet-type`, see desired::vttablet).
    let tablet_type = match labels.get("planetscale.com/tablet-type")?.as_str() {
        "rdonly" | "externalrdonly" => TabletType::Rdonly,
        "externalmaster" => TabletType::Spare,
        _ => TabletType::Replica,
    };
    let (start, end) = labels.get("planetscale.com/shard")?.split_once('-')?;
    let unsafe_part = |p: &str| {
        if p == "x" {
            String::new()
        } else {
            p.to_string()
        }
    };
    Some(TabletLabels {
        alias: Alias {
            cell: cell.clone(),
            uid,
        },
        tablet_type,
        keyspace: labels.get("planetscale.com/keyspace")?.clone(),
        shard: format!("{}-{}", unsafe_part(start), unsafe_part(end)),
    })
}

/// Registers the tablet of each Ready tablet pod in `ns` with the fake, once per pod (as a
/// vttablet does when it starts: later type changes, such as a promotion, are Vitess' own),
/// looking every 300 ms until the task is aborted.
pub fn start_tablet_agent(
    client: Client,
    ns: String,
    fake: SharedFake,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client, &ns);
        let params = ListParams::default().labels("planetscale.com/component=vttablet");
        let mut started: HashSet<String> = HashSet::new();
        loop {
            if let Ok(list) = pods.list(&params).await {
                let guard = fake.lock().await;
                if let Some(fake) = guard.as_ref() {
                    for pod in list.items.iter().filter(|p| is_ready(p)) {
                        let uid = pod.uid().unwrap_or_default();
                        if started.contains(&uid) {
                            continue;
                        }
                        if let Some(t) = tablet_of(pod) {
                            fake.register_tablet(t.alias, &t.keyspace, &t.shard, t.tablet_type);
                            started.insert(uid);
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// A fresh fake vtctld, an operator that calls it on a new namespace
/// ([`with_operator_at`]) and the tablet agent; then `body` gets the fake and its address.
/// The fake is stopped afterwards (a test may stop and restart it meanwhile).
pub async fn with_fake_vtctld<F>(test: &str, body: F) -> Result<()>
where
    F: AsyncFnOnce(&Client, &str, &mut Operator, &SharedFake, SocketAddr) -> Result<()>,
{
    with_fake_and_agent(test, None, body).await
}

/// [`with_fake_vtctld`] with `env` arguments put before the operator (`operator_args`).
pub(crate) async fn with_fake_and_agent<F>(
    test: &str,
    operator_args: Option<&[&str]>,
    body: F,
) -> Result<()>
where
    F: AsyncFnOnce(&Client, &str, &mut Operator, &SharedFake, SocketAddr) -> Result<()>,
{
    let fake = FakeVtctld::start(([127, 0, 0, 1], 0).into())
        .await
        .context("starting a fake vtctld")?;
    let address = fake.local_addr();
    let shared: SharedFake = Arc::new(Mutex::new(Some(fake)));
    let result = with_operator_at(
        test,
        operator_args,
        &address.to_string(),
        async |client, ns, operator| {
            let agent = start_tablet_agent(client.clone(), ns.to_string(), shared.clone());
            let result = body(client, ns, operator, &shared, address).await;
            agent.abort();
            result
        },
    )
    .await;
    if let Some(fake) = shared.lock().await.take() {
        fake.stop().await;
    }
    result
}

/// A fake vtctld and its tablet agent on one namespace, for tests that start their operators
/// themselves (`--vtctld-address *=` [`FakeTopology::address`]).
pub struct FakeTopology {
    shared: SharedFake,
    address: SocketAddr,
    agent: tokio::task::JoinHandle<()>,
}

impl FakeTopology {
    pub async fn start(client: &Client, ns: &str) -> Result<Self> {
        let fake = FakeVtctld::start(([127, 0, 0, 1], 0).into())
            .await
            .context("starting a fake vtctld")?;
        let address = fake.local_addr();
        let shared: SharedFake = Arc::new(Mutex::new(Some(fake)));
        let agent = start_tablet_agent(client.clone(), ns.to_string(), shared.clone());
        Ok(Self {
            shared,
            address,
            agent,
        })
    }

    /// The fake, shared with its tablet agent.
    pub fn shared(&self) -> &SharedFake {
        &self.shared
    }

    /// The fake's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The operator's `--vtctld-address` for it: every cluster's vtctld is the fake.
    pub fn vtctld_address(&self) -> String {
        format!("*={}", self.address)
    }

    pub async fn stop(self) {
        self.agent.abort();
        if let Some(fake) = self.shared.lock().await.take() {
            fake.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use std::collections::BTreeMap;

    #[test]
    fn tablets_from_labels() {
        let labels: BTreeMap<String, String> = [
            ("planetscale.com/cell", "zone1"),
            ("planetscale.com/tablet-uid", "0790125915"),
            ("planetscale.com/tablet-type", "rdonly"),
            ("planetscale.com/keyspace", "customer"),
            ("planetscale.com/shard", "x-80"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let pod = Pod {
            metadata: ObjectMeta {
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        let t = tablet_of(&pod).unwrap();
        assert_eq!(t.alias.to_string(), "zone1-0790125915");
        assert_eq!(t.tablet_type, TabletType::Rdonly);
        assert_eq!((t.keyspace.as_str(), t.shard.as_str()), ("customer", "-80"));
    }
}
