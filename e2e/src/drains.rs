//! What the drain and fault tests share: the one-shard cluster they apply, and the drain
//! annotations they set and read on tablet pods.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::tablet_of;

/// A Secret with the database init script and a VitessCluster `name` of one cell (`zone1`, a
/// vtgate) and one keyspace `keyspace` of one shard (`-`): `replicas` tablets of a `replica`
/// pool with 1 Gi claims, `updateStrategy.type: strategy`, vttablet image `image`,
/// durability `none`, turndown `Immediate`.
pub fn one_shard_cluster_yaml(
    name: &str,
    keyspace: &str,
    replicas: u32,
    strategy: &str,
    image: &str,
) -> String {
    format!(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: {name}-config
stringData:
  init_db.sql: "CREATE DATABASE IF NOT EXISTS vt_{keyspace};"
---
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata:
  name: {name}
spec:
  images:
    vttablet: {image}
  updateStrategy:
    type: {strategy}
  cells:
  - name: zone1
    gateway: {{replicas: 1}}
  keyspaces:
  - name: {keyspace}
    durabilityPolicy: none
    turndownPolicy: Immediate
    partitionings:
    - equal:
        parts: 1
        shardTemplate:
          databaseInitScriptSecret: {{name: {name}-config, key: init_db.sql}}
          tabletPools:
          - cell: zone1
            type: replica
            replicas: {replicas}
            vttablet: {{}}
            mysqld: {{}}
            dataVolumeClaimTemplate:
              accessModes: ["ReadWriteOnce"]
              resources:
                requests: {{storage: 1Gi}}
"#
    )
}

/// The tablet pods (not being deleted) by alias: of the cluster `cluster`, or of every
/// cluster (`None`).
pub async fn tablet_pods(pods: &Api<Pod>, cluster: Option<&str>) -> Result<BTreeMap<String, Pod>> {
    let mut selector = "planetscale.com/component=vttablet".to_string();
    if let Some(cluster) = cluster {
        selector.push_str(&format!(",planetscale.com/cluster={cluster}"));
    }
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("listing the pods labelled {selector}"))?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| tablet_of(&p).map(|t| (t.alias.to_string(), p)))
        .collect())
}

/// Sets the annotation `key` of pod `pod` to `value`, or removes it (`None`).
pub async fn annotate(pods: &Api<Pod>, pod: &str, key: &str, value: Option<&str>) -> Result<()> {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    pods.patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("annotating {pod} {key}={value:?}"))?;
    Ok(())
}

/// Whether the pod has the annotation `key`.
pub fn has_annotation(pod: &Pod, key: &str) -> bool {
    pod.annotations().contains_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_yaml_carries_what_it_is_given() {
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&one_shard_cluster_yaml(
            "c",
            "ks",
            3,
            "Immediate",
            "img:1",
        ))
        .unwrap();
        let spec = &docs[1]["spec"];
        assert_eq!(docs[0]["metadata"]["name"], "c-config");
        assert_eq!(spec["images"]["vttablet"], "img:1");
        assert_eq!(spec["updateStrategy"]["type"], "Immediate");
        assert_eq!(spec["keyspaces"][0]["name"], "ks");
        let pool =
            &spec["keyspaces"][0]["partitionings"][0]["equal"]["shardTemplate"]["tabletPools"][0];
        assert_eq!(pool["replicas"], 3);
    }
}
