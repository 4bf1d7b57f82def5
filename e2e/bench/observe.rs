//! Watches one namespace and records when each milestone is first reached: every expected
//! object exists, every pod is Ready, every VitessCluster is Ready, every VitessShard has a
//! primary; and counts the objects that change afterwards (real writes, whoever made them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;

use crate::cluster::Expected;

/// The milestones, in seconds since [`Observer::start_clock`].
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Milestones {
    /// Every object `render` lists exists.
    pub created: Option<f64>,
    /// Every pod that will run (tablets, etcd, Deployment replicas) is Ready.
    pub pods_ready: Option<f64>,
    /// Every VitessCluster reports Ready for its current generation.
    pub clusters_ready: Option<f64>,
    /// Every VitessShard reports a primary.
    pub primaries: Option<f64>,
}

#[derive(Default)]
struct State {
    started: Option<Instant>,
    /// `Kind/name` -> resourceVersion of what exists now.
    present: BTreeMap<String, String>,
    ready_pods: BTreeSet<String>,
    ready_clusters: BTreeSet<String>,
    clusters: BTreeSet<String>,
    shards: BTreeSet<String>,
    shards_with_primary: BTreeSet<String>,
    milestones: Milestones,
    /// Objects whose resourceVersion changed (or that appeared or went) since the last reset.
    changes: u64,
}

/// Watchers on one namespace.
pub struct Observer {
    state: Arc<Mutex<State>>,
    expected: Expected,
    /// Whether cluster readiness and primaries count (false for the floor: no operator).
    operator: bool,
    tasks: Vec<JoinHandle<()>>,
}

impl Observer {
    /// Starts a watcher per kind that `expected` has, plus pods and our kinds.
    pub fn start(client: &Client, namespace: &str, expected: Expected, operator: bool) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let mut resources: Vec<(String, ApiResource)> = vec![
            ("Pod".into(), ApiResource::erase::<Pod>(&())),
            (
                "PersistentVolumeClaim".into(),
                ApiResource::erase::<PersistentVolumeClaim>(&()),
            ),
            ("Service".into(), ApiResource::erase::<Service>(&())),
            ("Deployment".into(), ApiResource::erase::<Deployment>(&())),
            (
                "PodDisruptionBudget".into(),
                ApiResource::erase::<PodDisruptionBudget>(&()),
            ),
        ];
        if expected.kinds.contains("HorizontalPodAutoscaler") {
            resources.push((
                "HorizontalPodAutoscaler".into(),
                ApiResource::erase::<HorizontalPodAutoscaler>(&()),
            ));
        }
        for kind in [
            "VitessCluster",
            "VitessCell",
            "VitessKeyspace",
            "VitessShard",
            "EtcdLockserver",
            "VitessBackupStorage",
        ] {
            let gvk = GroupVersionKind::gvk("planetscale.com", "v2", kind);
            resources.push((kind.into(), ApiResource::from_gvk(&gvk)));
        }
        let tasks = resources
            .into_iter()
            .map(|(kind, resource)| {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &resource);
                let state = state.clone();
                tokio::spawn(async move {
                    let mut events = std::pin::pin!(watcher::watcher(
                        api,
                        watcher::Config::default().any_semantic()
                    ));
                    while let Some(event) = events.next().await {
                        match event {
                            Ok(Event::Apply(o) | Event::InitApply(o)) => {
                                lock(&state).seen(&kind, &o, false)
                            }
                            Ok(Event::Delete(o)) => lock(&state).seen(&kind, &o, true),
                            Ok(Event::Init | Event::InitDone) => {}
                            // The watcher retries by itself; back off a little.
                            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                        }
                    }
                })
            })
            .collect();
        Self {
            state,
            expected,
            operator,
            tasks,
        }
    }

    /// From now on, milestones are timed from this instant.
    pub fn start_clock(&self) {
        lock(&self.state).started = Some(Instant::now());
    }

    /// The milestones so far; each is checked against the current state first.
    pub fn milestones(&self) -> Milestones {
        let mut state = lock(&self.state);
        let Some(started) = state.started else {
            return Milestones::default();
        };
        let now = started.elapsed().as_secs_f64();
        let created = self
            .expected
            .objects
            .iter()
            .all(|o| state.present.contains_key(o));
        let pods_ready = state.ready_pods.len() >= self.expected.pods;
        let expected_shards = self
            .expected
            .objects
            .iter()
            .filter(|o| o.starts_with("VitessShard/"))
            .count();
        let clusters_ready =
            !state.clusters.is_empty() && state.ready_clusters.len() == state.clusters.len();
        let primaries = state.shards.len() >= expected_shards
            && state.shards_with_primary.len() >= expected_shards;
        let m = &mut state.milestones;
        for (reached, slot) in [
            (created, &mut m.created),
            (pods_ready, &mut m.pods_ready),
            (self.operator && clusters_ready, &mut m.clusters_ready),
            (self.operator && primaries, &mut m.primaries),
        ] {
            if reached && slot.is_none() {
                *slot = Some(now);
            }
        }
        state.milestones.clone()
    }

    /// Whether every milestone that applies was reached.
    pub fn converged(&self) -> bool {
        let m = self.milestones();
        m.created.is_some()
            && m.pods_ready.is_some()
            && (!self.operator || (m.clusters_ready.is_some() && m.primaries.is_some()))
    }

    /// Waits until [`Observer::converged`], polling every 100 ms, for at most `timeout`.
    /// `check` runs on every poll (e.g. that the operator still runs).
    pub async fn wait_converged(
        &self,
        timeout: Duration,
        mut check: impl FnMut() -> Result<()>,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.converged() {
            check()?;
            if Instant::now() > deadline {
                bail!(
                    "not converged after {timeout:?}: {:?}; {}",
                    self.milestones(),
                    self.progress()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Counts of what exists, for progress lines and timeouts.
    pub fn progress(&self) -> String {
        let state = lock(&self.state);
        let present = self
            .expected
            .objects
            .iter()
            .filter(|o| state.present.contains_key(*o))
            .count();
        format!(
            "{present}/{} objects, {}/{} pods ready, {}/{} clusters ready, {}/{} shards with a primary",
            self.expected.objects.len(),
            state.ready_pods.len(),
            self.expected.pods,
            state.ready_clusters.len(),
            state.clusters.len(),
            state.shards_with_primary.len(),
            state.shards.len()
        )
    }

    /// Starts counting changed objects from zero.
    pub fn reset_changes(&self) {
        lock(&self.state).changes = 0;
    }

    /// Objects created, changed or deleted since [`Observer::reset_changes`].
    pub fn changes(&self) -> u64 {
        lock(&self.state).changes
    }

    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    fn seen(&mut self, kind: &str, object: &DynamicObject, deleted: bool) {
        let name = object.name_any();
        let key = format!("{kind}/{name}");
        let version = object.resource_version().unwrap_or_default();
        let gone = deleted || object.metadata.deletion_timestamp.is_some();
        let before = if deleted {
            self.present.remove(&key)
        } else {
            self.present.insert(key, version.clone())
        };
        if before.as_deref() != Some(version.as_str()) {
            self.changes += 1;
        }
        let status = &object.data["status"];
        match kind {
            "Pod" => {
                let ready = !gone
                    && status["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True");
                set(&mut self.ready_pods, name, ready);
            }
            "VitessCluster" => {
                let current = status["observedGeneration"].as_i64() == object.metadata.generation;
                let ready = !gone
                    && current
                    && status["conditions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True");
                set(&mut self.clusters, name.clone(), !gone);
                set(&mut self.ready_clusters, name, ready);
            }
            "VitessShard" => {
                let primary = !gone
                    && status["masterAlias"]
                        .as_str()
                        .is_some_and(|a| !a.is_empty());
                set(&mut self.shards, name.clone(), !gone);
                set(&mut self.shards_with_primary, name, primary);
            }
            _ => {}
        }
    }
}

fn set(names: &mut BTreeSet<String>, name: String, member: bool) {
    if member {
        names.insert(name);
    } else {
        names.remove(&name);
    }
}
