//! Plays what each vttablet does when it starts, as e2e/tests/drain.rs does: once a tablet pod
//! is Ready, its tablet is registered (as a REPLICA or RDONLY) in the fake vtctld, under the
//! keyspace and shard its labels name. Event-driven (one watch), so that it neither lags nor
//! loads the API server with polls.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;
use vitess_operator::vitess::fake::FakeVtctld;
use vitess_operator::vitess::{Alias, TabletType};
use vitess_operator_e2e::is_ready;

/// Registers the tablet of every Ready tablet pod in `namespace` with `fake`, until aborted.
pub fn start(client: Client, namespace: &str, fake: Arc<FakeVtctld>) -> JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let config = watcher::Config::default()
        .labels("planetscale.com/component=vttablet")
        .any_semantic();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher::watcher(pods, config));
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(pod) | Event::InitApply(pod)) if is_ready(&pod) => {
                    if let Some((alias, keyspace, shard, tablet_type)) = tablet_of(&pod) {
                        fake.register_tablet(alias, &keyspace, &shard, tablet_type);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    })
}

/// The tablet a pod runs: alias, keyspace, Vitess shard name and type, from its labels.
fn tablet_of(pod: &Pod) -> Option<(Alias, String, String, TabletType)> {
    let labels = pod.labels();
    let cell = labels.get("planetscale.com/cell")?;
    let uid = labels.get("planetscale.com/tablet-uid")?.parse().ok()?;
    let keyspace = labels.get("planetscale.com/keyspace")?;
    // Labels carry the safe form (`x-80`); Vitess names an open end with nothing (`-80`).
    let shard = labels
        .get("planetscale.com/shard")?
        .split('-')
        .map(|end| if end == "x" { "" } else { end })
        .collect::<Vec<_>>()
        .join("-");
    let tablet_type = match labels.get("planetscale.com/tablet-type")?.as_str() {
        "rdonly" => TabletType::Rdonly,
        _ => TabletType::Replica,
    };
    Some((
        Alias {
            cell: cell.clone(),
            uid,
        },
        keyspace.clone(),
        shard,
        tablet_type,
    ))
}
