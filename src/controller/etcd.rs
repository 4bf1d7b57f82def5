//! Reconciles an EtcdLockserver: three member Pods with their PVCs, the client and peer
//! Services and the disruption budget; available when every member is ready.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::watcher;

use super::adopt;
use super::condition::{self, Readiness};
use super::shard::pod_ready;
use super::{Context, Error, REQUEUE};
use crate::api::EtcdLockserver;
use crate::api::etcd::EtcdLockserverStatus;
use crate::k8s::applier::Applier;
use crate::{desired, domain::labels, k8s::apply};
use kube::core::PartialObjectMeta;

pub async fn run(ctx: Arc<Context>) {
    Controller::new(ctx.api::<EtcdLockserver>(), watcher::Config::default())
        .owns(ctx.api::<PartialObjectMeta<Pod>>(), super::children())
        .owns(ctx.api::<PartialObjectMeta<Service>>(), super::children())
        .owns(
            ctx.api::<PartialObjectMeta<PodDisruptionBudget>>(),
            super::children(),
        )
        .with_config(super::config())
        .shutdown_on_signal()
        .run(reconcile, super::error_policy, ctx.clone())
        .for_each(|result| super::report(&ctx, result))
        .await;
}

#[tracing::instrument(skip_all, fields(etcd = %lockserver.name_any()))]
async fn reconcile(lockserver: Arc<EtcdLockserver>, ctx: Arc<Context>) -> Result<Action, Error> {
    let owner = lockserver.as_ref();
    let desired::etcd::EtcdObjects {
        pods,
        pvcs,
        client_service,
        peer_service,
        pdb,
    } = desired::etcd::build(owner)?;
    // Only the Services and the disruption budget are ever pruned (when their create* switch
    // went off); member pods and their PVCs hold the topology and are never deleted here.
    let desired_services: BTreeSet<String> = peer_service
        .iter()
        .chain(&client_service)
        .map(|s| s.name_any())
        .collect();
    let desired_pdbs: BTreeSet<String> = pdb.iter().map(|p| p.name_any()).collect();
    let applier = Applier::new(&ctx.client, &ctx.events, owner);
    applier.all(peer_service).await?;
    let client_service = applier
        .all(client_service)
        .await?
        .first()
        .map(|s| s.name_any());
    applier.all(pdb).await?;
    for claim in pvcs {
        applier.claim(claim).await?;
    }
    let name = owner.name_any();
    let selector = apply::selector(
        &[
            (labels::COMPONENT, labels::component::ETCD),
            (labels::ETCD_LOCKSERVER, &name),
        ],
        &[],
    );
    let pods = members(&applier, &ctx, owner, &selector, pods).await?;
    applier
        .prune::<Service>(&selector, &desired_services)
        .await?;
    applier
        .prune::<PodDisruptionBudget>(&selector, &desired_pdbs)
        .await?;
    let status = status(owner, &pods, client_service);
    apply::status(&ctx.client, owner, owner.status.as_ref(), &status).await?;
    tracing::debug!(requests = applier.requests(), "applied");
    Ok(Action::requeue(REQUEUE))
}

/// The member pods, from one list: each of `desired` applied, unless the listed pod of its
/// name is another writer's (the Go operator's, before a takeover), which is kept as it is
/// ([`adopt::member`]: marked adopted when it runs what ours would, else left running and
/// its differences logged). Returns the pods as the server has them.
async fn members(
    applier: &Applier<'_, EtcdLockserver>,
    ctx: &Context,
    owner: &EtcdLockserver,
    selector: &str,
    desired: Vec<Pod>,
) -> Result<Vec<Pod>, Error> {
    let namespace = owner.namespace().unwrap_or_default();
    let described = format!("EtcdLockserver {namespace}/{}", owner.name_any());
    let listed: Vec<Pod> = apply::labelled(&ctx.client, &namespace, selector, &described).await?;
    let mut out = Vec::with_capacity(desired.len());
    for wanted in desired {
        let name = wanted.name_any();
        let now = listed.iter().find(|p| p.name_any() == name);
        match (adopt::member(&wanted, now), now) {
            (adopt::Member::Keep, Some(pod)) => out.push(pod.clone()),
            (adopt::Member::Adopt(hash), Some(pod)) => {
                let adopted =
                    apply::adopt(&ctx.client, pod, labels::rollout::ADOPTED_FOR, &hash).await?;
                tracing::info!(pod = %name, "adopted etcd member pod: it already runs what ours would");
                adopt::publish_adopted(ctx, owner, &name).await;
                out.push(adopted);
            }
            (adopt::Member::Differs(differences), Some(pod)) => {
                tracing::info!(
                    pod = %name,
                    %differences,
                    "etcd member pod made by another writer differs from ours: kept as it is \
                     (delete it to have ours made, one member at a time)"
                );
                out.push(pod.clone());
            }
            _ => out.push(applier.owned(wanted).await?),
        }
    }
    Ok(out)
}

/// Available when every member this object runs is ready (etcd needs a quorum, but the
/// operator reports the full set, as the Go operator does).
fn status(
    lockserver: &EtcdLockserver,
    pods: &[Pod],
    client_service: Option<String>,
) -> EtcdLockserverStatus {
    let mut status = lockserver.status.clone().unwrap_or_default();
    status.observed_generation = lockserver.metadata.generation;
    let ready = pods.iter().filter(|p| pod_ready(p)).count();
    let available = !pods.is_empty() && ready == pods.len();
    status.available = condition::status_of(available);
    status.client_service_name = client_service;
    let readiness = if available {
        Readiness::new(
            true,
            "MembersReady",
            format!("{ready}/{} members ready", pods.len()),
        )
    } else {
        Readiness::new(
            false,
            "MembersNotReady",
            format!("{ready}/{} members ready", pods.len()),
        )
    };
    status.conditions = condition::with_ready(
        &status.conditions,
        &readiness,
        lockserver.metadata.generation,
    );
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::testing::{self, requests, writes};

    /// The example cluster's global lockserver, as the stand-in API server stores it.
    fn stored_lockserver(server: &crate::k8s::mock::ApiServer) -> EtcdLockserver {
        let lockserver = desired::cluster::children(&testing::example_cluster())
            .expect("children")
            .etcd
            .expect("a global lockserver");
        server.insert_object(&lockserver)
    }

    const APPLIES: &[&str] = &[
        "apply services/example-etcd-faf13de3-peer",
        "apply services/example-etcd-faf13de3-client",
        "apply poddisruptionbudgets/etcd-lockserver-example-etcd-faf13de3",
        "apply persistentvolumeclaims/example-etcd-faf13de3-1",
        "apply persistentvolumeclaims/example-etcd-faf13de3-2",
        "apply persistentvolumeclaims/example-etcd-faf13de3-3",
        "list pods",
        "apply pods/example-etcd-faf13de3-1",
        "apply pods/example-etcd-faf13de3-2",
        "apply pods/example-etcd-faf13de3-3",
        "list services",
        "list poddisruptionbudgets",
    ];

    #[tokio::test]
    async fn a_new_lockserver_gets_its_members_then_a_steady_one_writes_nothing() {
        let (ctx, server) = testing::context(None);
        let lockserver = stored_lockserver(&server);

        reconcile(Arc::new(lockserver.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        let first = server.take_calls();
        let mut expected = APPLIES.to_vec();
        expected.push("status etcdlockservers/example-etcd-faf13de3");
        assert_eq!(requests(&first), expected);
        // Everything but the three lists wrote: all of it is new.
        assert_eq!(writes(&first).len(), expected.len() - 3);

        let lockserver = server.object_like(&lockserver).expect("still there");
        reconcile(Arc::new(lockserver), ctx.clone())
            .await
            .expect("second reconcile");
        let second = server.take_calls();
        assert_eq!(requests(&second), APPLIES);
        assert_eq!(writes(&second), Vec::<&str>::new());
    }

    #[tokio::test]
    async fn go_made_members_are_kept_as_they_are_adopted_when_they_run_ours() {
        let (ctx, server) = testing::context(None);
        let lockserver = stored_lockserver(&server);
        reconcile(Arc::new(lockserver.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        server.take_calls();
        // As the Go operator leaves them: no server-side apply of ours, flags spelled with
        // underscores; the third runs another etcd image.
        let go_made = |member: u32, image: Option<&str>| {
            let name = format!("example-etcd-faf13de3-{member}");
            let stored = server
                .get("", "pods", testing::NAMESPACE, &name)
                .expect("made");
            let mut pod: Pod = serde_json::from_value(stored).expect("a pod");
            pod.metadata.managed_fields = None;
            let spec = pod.spec.as_mut().expect("spec");
            for arg in spec.containers[0].args.iter_mut().flatten() {
                if let Some((flag, value)) = arg.split_once('=') {
                    *arg = format!(
                        "--{}={value}",
                        flag.trim_start_matches('-').replace('-', "_")
                    );
                }
            }
            if let Some(image) = image {
                spec.containers[0].image = Some(image.into());
            }
            server.insert_object(&pod)
        };
        let (same, other) = (
            go_made(1, None),
            go_made(3, Some("quay.io/coreos/etcd:v3.4.0")),
        );

        let lockserver = server.object_like(&lockserver).expect("still there");
        reconcile(Arc::new(lockserver.clone()), ctx.clone())
            .await
            .expect("second reconcile");
        let calls = server.take_calls();
        // The equivalent one is marked (its spec untouched), the other left as it is.
        let kept = |pod: &Pod| server.object_like(pod).expect("kept");
        assert!(
            kept(&same)
                .annotations()
                .contains_key(labels::rollout::ADOPTED_FOR)
        );
        assert_eq!(kept(&same).spec, same.spec);
        assert_eq!(kept(&other).spec, other.spec);
        assert!(
            !kept(&other)
                .annotations()
                .contains_key(labels::rollout::ADOPTED_FOR)
        );
        assert!(!writes(&calls).iter().any(|w| w.starts_with("delete pods")));

        // Then neither is applied again: the adopted one is marked, the other not ours.
        let lockserver = server.object_like(&lockserver).expect("still there");
        reconcile(Arc::new(lockserver), ctx.clone())
            .await
            .expect("third reconcile");
        let third = server.take_calls();
        let applied: Vec<&str> = requests(&third)
            .into_iter()
            .filter(|r| r.starts_with("apply pods/"))
            .collect();
        assert_eq!(applied, ["apply pods/example-etcd-faf13de3-2"]);
    }

    #[tokio::test]
    async fn switching_the_client_service_off_prunes_it_and_says_so() {
        let (ctx, server) = testing::context(None);
        let lockserver = stored_lockserver(&server);
        reconcile(Arc::new(lockserver.clone()), ctx.clone())
            .await
            .expect("first reconcile");
        server.take_calls();

        let mut lockserver = server.object_like(&lockserver).expect("still there");
        lockserver.spec.template.create_client_service = Some(false);
        reconcile(Arc::new(lockserver), ctx.clone())
            .await
            .expect("second reconcile");
        let calls = server.take_calls();
        assert_eq!(
            writes(&calls),
            vec![
                "delete services/example-etcd-faf13de3-client",
                "create events",
                "status etcdlockservers/example-etcd-faf13de3",
            ]
        );
        assert!(!requests(&calls).contains(&"apply services/example-etcd-faf13de3-client"));
        // The members and their claims are never pruned here.
        for member in 1..=3 {
            let name = format!("example-etcd-faf13de3-{member}");
            assert!(server.get("", "pods", testing::NAMESPACE, &name).is_some());
            let claims = "persistentvolumeclaims";
            assert!(server.get("", claims, testing::NAMESPACE, &name).is_some());
        }
    }
}
