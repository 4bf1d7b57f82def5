//! Reconcile tests of the EtcdLockserver controller against the stand-in API server.

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

/// The lockserver stored and reconciled once (its members made), the calls so far taken.
async fn made_lockserver() -> (Arc<Context>, crate::k8s::mock::ApiServer, EtcdLockserver) {
    let (ctx, server) = testing::context(None);
    let lockserver = stored_lockserver(&server);
    reconcile(Arc::new(lockserver.clone()), ctx.clone())
        .await
        .expect("first reconcile");
    server.take_calls();
    (ctx, server, lockserver)
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
    let (ctx, server, lockserver) = made_lockserver().await;
    // As the Go operator leaves them: no server-side apply of ours, flags spelled with
    // underscores; the third runs another etcd image.
    let go_made = |member: u32, image: Option<&str>| {
        let mut pod = testing::stored_pod(&server, &member_pod(member));
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

fn member_pod(member: u32) -> String {
    format!("example-etcd-faf13de3-{member}")
}

/// Ready long enough to count as settled.
fn ready(pod: &mut Pod) {
    testing::ready_since(pod, 60);
}

#[tokio::test]
async fn a_changed_spec_rolls_released_members_one_at_a_time_never_applied_over() {
    let (ctx, server, lockserver) = made_lockserver().await;
    let member = |i: u32| -> Pod {
        let name = format!("example-etcd-faf13de3-{i}");
        serde_json::from_value(
            server
                .get("", "pods", testing::NAMESPACE, &name)
                .expect("made"),
        )
        .expect("a pod")
    };
    let before: Vec<Pod> = (1..=3).map(member).collect();

    // A new etcd image: the API server would refuse our pod over the running one (and
    // taking it in place would restart all three at once), so nothing is applied; each
    // member is scheduled, once, with what differs.
    let mut lockserver = server.object_like(&lockserver).expect("still there");
    lockserver.spec.template.image = Some("quay.io/coreos/etcd:v3.5.99".into());
    let lockserver = server.insert_object(&lockserver);
    reconcile(Arc::new(lockserver.clone()), ctx.clone())
        .await
        .expect("second reconcile");
    let calls = server.take_calls();
    assert!(
        !requests(&calls)
            .iter()
            .any(|r| r.starts_with("apply pods/")),
        "{:?}",
        requests(&calls)
    );
    assert!(!writes(&calls).iter().any(|w| w.starts_with("delete")));
    for i in 1..=3 {
        let pod = member(i);
        let note = &pod.annotations()[labels::rollout::SCHEDULED];
        assert!(note.contains("v3.5.99"), "{note}");
        assert_eq!(pod.spec, before[i as usize - 1].spec);
    }
    // Scheduled once: the next reconcile writes nothing.
    reconcile(Arc::new(lockserver.clone()), ctx.clone())
        .await
        .expect("third reconcile");
    let calls = server.take_calls();
    assert_eq!(writes(&calls), Vec::<&str>::new());

    // Released while member 1 is not Ready: it waits (the quorum would be down to one).
    testing::change_pod(&server, &member_pod(2), |pod| {
        pod.annotations_mut()
            .insert(labels::rollout::RELEASED.into(), "true".into());
    });
    for i in [2, 3] {
        testing::change_pod(&server, &member_pod(i), ready);
    }
    reconcile(Arc::new(lockserver.clone()), ctx.clone())
        .await
        .expect("fourth reconcile");
    assert!(
        !writes(&server.take_calls())
            .iter()
            .any(|w| w.starts_with("delete"))
    );

    // Every member Ready, but member 1 only just: its peers may not reach it yet, so the
    // released ones wait, looked at again soon.
    testing::change_pod(&server, &member_pod(1), |p| testing::ready_since(p, 2));
    let action = reconcile(Arc::new(lockserver.clone()), ctx.clone())
        .await
        .expect("reconcile while member 1 settles");
    assert_eq!(action, Action::requeue(ROLL_POLL));
    assert!(
        !writes(&server.take_calls())
            .iter()
            .any(|w| w.starts_with("delete"))
    );

    // Every member settled, two released: one goes, the other waits for the next turn.
    testing::change_pod(&server, &member_pod(1), ready);
    testing::change_pod(&server, &member_pod(3), |pod| {
        pod.annotations_mut()
            .insert(labels::rollout::RELEASED.into(), "true".into());
    });
    reconcile(Arc::new(lockserver.clone()), ctx.clone())
        .await
        .expect("fifth reconcile");
    let calls = server.take_calls();
    let deleted: Vec<&str> = writes(&calls)
        .into_iter()
        .filter(|w| w.starts_with("delete"))
        .collect();
    assert_eq!(deleted, ["delete pods/example-etcd-faf13de3-2"]);
    let claims = "persistentvolumeclaims";
    assert!(
        server
            .get("", claims, testing::NAMESPACE, "example-etcd-faf13de3-2")
            .is_some()
    );

    // Gone: made again from the new spec, on its claim; member 3 still waits for it.
    reconcile(Arc::new(lockserver.clone()), ctx.clone())
        .await
        .expect("sixth reconcile");
    let calls = server.take_calls();
    assert!(requests(&calls).contains(&"apply pods/example-etcd-faf13de3-2"));
    assert!(!writes(&calls).iter().any(|w| w.starts_with("delete")));
    let remade = member(2);
    let container = &remade.spec.as_ref().expect("spec").containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some("quay.io/coreos/etcd:v3.5.99")
    );
    assert!(
        !remade
            .annotations()
            .contains_key(labels::rollout::SCHEDULED)
    );
    assert_eq!(member(3).spec, before[2].spec);
}

#[tokio::test]
async fn switching_the_client_service_off_prunes_it_and_says_so() {
    let (ctx, server, lockserver) = made_lockserver().await;

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

#[tokio::test]
async fn a_member_whose_claim_is_going_is_made_again_only_once_it_has_gone() {
    let (ctx, server, lockserver) = made_lockserver().await;
    let name = member_pod(2);

    let claim = testing::lose_disk(&server, &name);

    let action = reconcile(Arc::new(lockserver.clone()), ctx.clone())
        .await
        .expect("reconcile while the claim goes");
    let calls = server.take_calls();
    assert!(
        !writes(&calls).contains(&format!("apply pods/{name}").as_str()),
        "{:?}",
        writes(&calls)
    );
    assert_eq!(action, Action::requeue(ROLL_POLL));

    server.remove_like(&claim);
    reconcile(Arc::new(lockserver), ctx.clone())
        .await
        .expect("reconcile once the claim has gone");
    let calls = server.take_calls();
    let written = writes(&calls);
    let claim_at = written
        .iter()
        .position(|w| *w == format!("apply persistentvolumeclaims/{name}"))
        .expect("the claim made again");
    let pod_at = written
        .iter()
        .position(|w| *w == format!("apply pods/{name}"))
        .expect("the pod made again");
    assert!(claim_at < pod_at, "{written:?}");
}
