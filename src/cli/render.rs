//! `vitess-operator render`: every object the operator would create for the VitessClusters in a
//! file, offline, as multi-document YAML, in the order the operator creates them.

use std::path::Path;

use serde_json::Value;

use crate::api::VitessCluster;
use crate::cli::validate::{self, Checker};
use crate::cli::yaml;
use crate::desired;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Yaml { file: String, source: yaml::Error },
    #[error("{file} is not valid, nothing rendered:\n{problems}")]
    Invalid { file: String, problems: String },
    #[error("{file} has no VitessCluster to render")]
    NoCluster { file: String },
    #[error(transparent)]
    Build(#[from] desired::Error),
    #[error("cannot write the rendered objects: {0}")]
    Output(yaml::Error),
    #[error("cannot encode a rendered object: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("cannot read a VitessCluster from {file}: {source}")]
    Decode {
        file: String,
        source: serde_json::Error,
    },
}

/// Renders the children of every VitessCluster in `path`; refuses invalid input, so what it
/// prints is what the operator would really do.
pub fn run(path: &Path) -> Result<String, Error> {
    let file = path.display().to_string();
    let text = validate::read_input(path).map_err(|source| Error::Read {
        file: file.clone(),
        source,
    })?;
    let problems = validate::check_text(&Checker::new(), &file, &text);
    if !problems.is_empty() {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(Error::Invalid {
            file,
            problems: lines.join("\n"),
        });
    }
    let docs = yaml::parse_documents(&text).map_err(|source| Error::Yaml {
        file: file.clone(),
        source,
    })?;
    let mut out = String::new();
    let mut clusters = 0;
    for doc in docs.iter().filter(|d| is_cluster(d)) {
        let cluster: VitessCluster =
            serde_json::from_value(doc.clone()).map_err(|source| Error::Decode {
                file: file.clone(),
                source,
            })?;
        out.push_str(&render_cluster(&cluster)?);
        clusters += 1;
    }
    if clusters == 0 {
        return Err(Error::NoCluster { file });
    }
    Ok(out)
}

fn is_cluster(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some("VitessCluster")
}

/// Every child of one cluster, as YAML documents.
pub fn render_cluster(cluster: &VitessCluster) -> Result<String, Error> {
    let children = desired::cluster::children(cluster)?;
    let mut objects: Vec<Value> = Vec::new();
    if let Some(etcd) = &children.etcd {
        objects.push(serde_json::to_value(etcd)?);
    }
    for cell in &children.cells {
        objects.push(serde_json::to_value(cell)?);
    }
    for keyspace in &children.keyspaces {
        objects.push(serde_json::to_value(keyspace)?);
        for shard in desired::keyspace::shards(keyspace)? {
            objects.push(serde_json::to_value(&shard)?);
        }
    }
    for storage in &children.backup_storages {
        objects.push(serde_json::to_value(storage)?);
    }
    objects.extend(workloads(cluster, &children)?);
    yaml::to_documents(&objects).map_err(Error::Output)
}

/// What the controllers would make of the children: etcd, vtctld, the cluster-wide
/// Services, the backup schedules' CronJobs, each cell's vtgates, each shard's tablets and, for a
/// shard with backups, its vtbackup-init pod. Services come before what they front and PVCs
/// before their pods, as the controllers apply them.
fn workloads(
    cluster: &VitessCluster,
    children: &desired::cluster::ClusterChildren,
) -> Result<Vec<Value>, Error> {
    let mut objects: Vec<Value> = Vec::new();
    if let Some(etcd) = &children.etcd {
        let members = desired::etcd::build(etcd)?;
        push_all(&mut objects, members.peer_service.iter())?;
        push_all(&mut objects, members.client_service.iter())?;
        push_all(&mut objects, members.pdb.iter())?;
        for (pvc, pod) in members.pvcs.iter().zip(&members.pods) {
            objects.push(serde_json::to_value(pvc)?);
            objects.push(serde_json::to_value(pod)?);
        }
    }
    let vtctld = desired::vtctld::build(cluster, &desired::lockserver::global(cluster)?)?;
    objects.push(serde_json::to_value(&vtctld.service)?);
    push_all(&mut objects, vtctld.deployments.iter())?;
    objects.push(serde_json::to_value(desired::vtgate::cluster_service(
        cluster,
    )?)?);
    objects.push(serde_json::to_value(desired::vttablet::cluster_service(
        cluster,
    )?)?);
    push_all(&mut objects, desired::schedule::build(cluster)?.iter())?;
    for cell in &children.cells {
        let vtgate = desired::vtgate::build(cell)?;
        objects.push(serde_json::to_value(&vtgate.service)?);
        objects.push(serde_json::to_value(&vtgate.deployment)?);
        push_all(&mut objects, vtgate.autoscaler.iter())?;
    }
    for keyspace in &children.keyspaces {
        for shard in desired::keyspace::shards(keyspace)? {
            for tablet in desired::vttablet::build(&shard)? {
                push_all(&mut objects, tablet.pvc.iter())?;
                objects.push(serde_json::to_value(&tablet.pod)?);
            }
            // A new shard's first backup: the shard controller creates this pod while the
            // shard has no complete backup and no primary, which is where a new cluster starts.
            if let Some(init) = desired::vtbackup::init(&shard)? {
                push_all(&mut objects, init.pvc.iter())?;
                objects.push(serde_json::to_value(&init.pod)?);
            }
        }
    }
    Ok(objects)
}

fn push_all<'a, T: serde::Serialize + 'a>(
    objects: &mut Vec<Value>,
    items: impl Iterator<Item = &'a T>,
) -> Result<(), Error> {
    for item in items {
        objects.push(serde_json::to_value(item)?);
    }
    Ok(())
}
