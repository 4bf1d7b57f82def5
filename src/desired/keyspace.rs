//! From a VitessKeyspace to its VitessShards: one per distinct key range over all
//! partitionings, later partitionings winning for a key range both list (as in the Go
//! operator). Pure: no API calls.

use std::collections::BTreeMap;

use super::{Error, meta};
use crate::api::keyspace::{VitessKeyspace, VitessKeyspaceSpec};
use crate::api::shard::{VitessKeyRange, VitessShard, VitessShardSpec, VitessShardTemplate};
use crate::domain::keyrange::{self, KeyRange, compare_bounds};
use crate::domain::labels;
use crate::domain::names;

/// Builds the shards of `keyspace`, sorted by key range.
pub fn shards(keyspace: &VitessKeyspace) -> Result<Vec<VitessShard>, Error> {
    let cluster = cluster_of(keyspace)?;
    Ok(ranges(&keyspace.spec)
        .into_iter()
        .map(|(range, template)| shard(keyspace, cluster, &range, template))
        .collect())
}

/// The names [`shards`] gives, without building the shards.
pub fn shard_names(keyspace: &VitessKeyspace) -> Result<Vec<String>, Error> {
    let cluster = cluster_of(keyspace)?;
    Ok(ranges(&keyspace.spec)
        .into_iter()
        .map(|(range, _)| shard_name(keyspace, cluster, &range))
        .collect())
}

/// The cluster a keyspace belongs to (its label).
fn cluster_of(keyspace: &VitessKeyspace) -> Result<&str, Error> {
    keyspace
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CLUSTER))
        .map(String::as_str)
        .ok_or(Error::MissingLabel {
            kind: "VitessKeyspace",
            label: labels::CLUSTER,
        })
}

fn shard_name(keyspace: &VitessKeyspace, cluster: &str, range: &KeyRange) -> String {
    names::cluster::shard(cluster, &keyspace.spec.template.name, &range.safe_name())
}

/// Every shard's key range with its template, in Vitess order: later partitionings overwrite
/// earlier ones for the same range.
fn ranges(spec: &VitessKeyspaceSpec) -> Vec<(KeyRange, &VitessShardTemplate)> {
    // Key range (exact bounds) -> template.
    let mut by_range: BTreeMap<(String, String), &VitessShardTemplate> = BTreeMap::new();
    for partitioning in &spec.template.partitionings {
        if let Some(equal) = &partitioning.equal {
            for range in keyrange::equal_ranges(equal.parts, equal.hex_width) {
                by_range.insert((range.start, range.end), &equal.shard_template);
            }
        }
        if let Some(custom) = &partitioning.custom {
            for shard in &custom.shards {
                let key = (shard.key_range.start.clone(), shard.key_range.end.clone());
                by_range.insert(key, &shard.template);
            }
        }
    }
    let mut ranges: Vec<(KeyRange, &VitessShardTemplate)> = by_range
        .into_iter()
        .map(|((start, end), template)| (KeyRange { start, end }, template))
        .collect();
    // Vitess order: by start, an unbounded end after every bounded one.
    ranges.sort_by(|(a, _), (b, _)| {
        compare_bounds(&a.start, &b.start).then_with(|| {
            match (a.end.is_empty(), b.end.is_empty()) {
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ => compare_bounds(&a.end, &b.end),
            }
        })
    });
    ranges
}

/// The VitessShard of `range`, from its template and what the keyspace passes down.
fn shard(
    keyspace: &VitessKeyspace,
    cluster: &str,
    range: &KeyRange,
    template: &VitessShardTemplate,
) -> VitessShard {
    let namespace = &keyspace.metadata.namespace;
    let spec = &keyspace.spec;
    let ks_name = &spec.template.name;
    let safe = range.safe_name();
    VitessShard {
        metadata: meta(
            shard_name(keyspace, cluster, range),
            namespace,
            labels::set(&[
                (labels::CLUSTER, cluster),
                (labels::KEYSPACE, ks_name),
                (labels::SHARD, &safe),
            ]),
            template.annotations.clone(),
        ),
        spec: VitessShardSpec {
            template: template.clone(),
            name: range.to_string(),
            database_name: spec.template.database_name.clone(),
            zone_map: spec.zone_map.clone(),
            images: spec.images.clone(),
            image_pull_policies: spec.image_pull_policies.clone(),
            image_pull_secrets: spec.image_pull_secrets.clone(),
            key_range: VitessKeyRange {
                start: range.start.clone(),
                end: range.end.clone(),
            },
            global_lockserver: spec.global_lockserver.clone(),
            vitess_orchestrator: spec.template.vitess_orchestrator.clone(),
            backup_locations: spec.backup_locations.clone(),
            backup_engine: spec.backup_engine,
            extra_vitess_flags: spec.extra_vitess_flags.clone(),
            topology_reconciliation: spec.topology_reconciliation.clone(),
            update_strategy: spec.update_strategy.clone(),
            tablet_refresh_interval: spec.tablet_refresh_interval.clone(),
        },
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_are_the_names_of_the_shards() {
        let cluster = crate::controller::testing::cluster_in(
            &include_str!("../../examples/initial-cluster.yaml").replace("parts: 1", "parts: 4"),
        );
        let keyspaces = crate::desired::cluster::children(&cluster)
            .expect("children")
            .keyspaces;
        let built: Vec<String> = shards(&keyspaces[0])
            .expect("shards")
            .iter()
            .map(|s| s.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(built.len(), 4);
        assert_eq!(shard_names(&keyspaces[0]).expect("names"), built);
    }
}
