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
    let pods = applier.all(pods).await?;
    let name = owner.name_any();
    let selector = apply::selector(
        &[
            (labels::COMPONENT, labels::component::ETCD),
            (labels::ETCD_LOCKSERVER, &name),
        ],
        &[],
    );
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
        // Everything but the two lists wrote: all of it is new.
        assert_eq!(writes(&first).len(), expected.len() - 2);

        let lockserver = server.object_like(&lockserver).expect("still there");
        reconcile(Arc::new(lockserver), ctx.clone())
            .await
            .expect("second reconcile");
        let second = server.take_calls();
        assert_eq!(requests(&second), APPLIES);
        assert_eq!(writes(&second), Vec::<&str>::new());
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
