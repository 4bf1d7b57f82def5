//! Plays what each vttablet does when it starts, as the e2e tests' agent (`e2e/src/agent.rs`)
//! does: once a tablet pod is Ready, its tablet is registered (as a REPLICA or RDONLY) in the
//! fake vtctld, under the keyspace and shard its labels name. Event-driven (one watch) rather
//! than polling, so that it neither lags nor loads the API server at 500 pods.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;
use vitess_operator_e2e::{is_ready, tablet_of};
use vtctld_fake::FakeVtctld;

/// Registers the tablet of every Ready tablet pod in `namespace` with `fake`, until aborted.
pub fn start(client: Client, namespace: &str, fake: Arc<FakeVtctld>) -> JoinHandle<()> {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    let config = watcher::Config::default()
        .labels("planetscale.com/component=vttablet")
        .any_semantic();
    tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher::watcher(pods, config));
        let mut started: HashSet<String> = HashSet::new();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(pod) | Event::InitApply(pod)) if is_ready(&pod) => {
                    // Once per pod, as vttablet registers when it starts: a later event of
                    // the pod must not turn a promoted primary back into a REPLICA.
                    let uid = pod.uid().unwrap_or_default();
                    if !started.contains(&uid)
                        && let Some(t) = tablet_of(&pod)
                    {
                        fake.register_tablet(t.alias, &t.keyspace, &t.shard, t.tablet_type);
                        started.insert(uid);
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    })
}
