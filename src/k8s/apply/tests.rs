//! The tests of [`super`].

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use serde_json::json;

use super::*;
use crate::k8s::mock::{ApiServer, Call};

fn parent() -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": "parent", "namespace": "ns", "uid": "parent-uid"}
    }))
    .expect("a ConfigMap")
}

/// A Service in `ns`, labelled `component` (if any), controlled by `owner_uid` (if any).
fn service(name: &str, component: Option<&str>, owner_uid: Option<&str>) -> serde_json::Value {
    let mut service = json!({"apiVersion": "v1", "kind": "Service",
                             "metadata": {"name": name, "namespace": "ns"}});
    if let Some(component) = component {
        service["metadata"]["labels"] = json!({"planetscale.com/component": component});
    }
    if let Some(uid) = owner_uid {
        service["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "parent", "uid": uid,
            "controller": true
        }]);
    }
    service
}

fn calls(calls: &[Call]) -> Vec<(&str, bool)> {
    calls.iter().map(|c| (c.what.as_str(), c.wrote)).collect()
}

#[tokio::test]
async fn prune_deletes_only_what_is_labelled_ours_owned_by_the_parent_and_not_desired() {
    let (client, server) = ApiServer::start();
    let ours = Some("vtgate");
    server.insert("", "services", service("gone", ours, Some("parent-uid")));
    server.insert("", "services", service("wanted", ours, Some("parent-uid")));
    server.insert(
        "",
        "services",
        service("other-parent", ours, Some("other-uid")),
    );
    server.insert("", "services", service("no-owner", ours, None));
    server.insert(
        "",
        "services",
        service("unlabelled", None, Some("parent-uid")),
    );
    server.insert(
        "",
        "services",
        service("other-part", Some("etcd"), Some("parent-uid")),
    );
    let mut deleting = service("deleting", ours, Some("parent-uid"));
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    server.insert("", "services", deleting);

    let desired = BTreeSet::from(["wanted".to_string()]);
    let selector = selector(&[("planetscale.com/component", "vtgate")], &[]);
    let pruned = prune::<Service, _>(&client, &parent(), &selector, &desired)
        .await
        .expect("prune");

    assert_eq!(pruned, vec!["gone".to_string()]);
    assert_eq!(
        calls(&server.take_calls()),
        vec![("list services", false), ("delete services/gone", true)]
    );
    for kept in [
        "wanted",
        "other-parent",
        "no-owner",
        "unlabelled",
        "other-part",
        "deleting",
    ] {
        assert!(server.get("", "services", "ns", kept).is_some(), "{kept}");
    }
}

#[tokio::test]
async fn prune_with_everything_desired_makes_no_write() {
    let (client, server) = ApiServer::start();
    server.insert(
        "",
        "services",
        service("a", Some("vtgate"), Some("parent-uid")),
    );
    let desired = BTreeSet::from(["a".to_string()]);
    let selector = selector(&[("planetscale.com/component", "vtgate")], &[]);
    let pruned = prune::<Service, _>(&client, &parent(), &selector, &desired)
        .await
        .expect("prune");
    assert!(pruned.is_empty());
    assert_eq!(calls(&server.take_calls()), vec![("list services", false)]);
}

#[tokio::test]
async fn a_delete_spares_an_object_recreated_since_it_was_listed() {
    let (client, server) = ApiServer::start();
    server.insert(
        "",
        "services",
        service("a", Some("vtgate"), Some("parent-uid")),
    );
    let listed = children::<Service, _>(&client, &parent(), "planetscale.com/component")
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    // Deleted and made again under the same name by someone else: a new uid.
    let mut again = service("a", Some("vtgate"), Some("parent-uid"));
    again["metadata"]["uid"] = json!("new-uid");
    server.insert("", "services", again);

    assert!(!delete(&client, &listed[0]).await.expect("delete"));
    assert_eq!(
        calls(&server.take_calls()),
        vec![("list services", false), ("delete services/a", false)]
    );
    assert!(server.get("", "services", "ns", "a").is_some());
}

#[tokio::test]
async fn an_unchanged_status_is_not_written() {
    let (client, server) = ApiServer::start();
    let mut object = parent();
    server.insert(
        "",
        "configmaps",
        serde_json::to_value(&object).expect("json"),
    );
    object.data = None;
    let same = Some(BTreeMap::from([("a".to_string(), "1".to_string())]));
    status(
        &client,
        &object,
        same.as_ref(),
        same.as_ref().expect("some"),
    )
    .await
    .expect("status");
    assert!(server.take_calls().is_empty());
}
