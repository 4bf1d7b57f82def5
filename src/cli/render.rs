//! `vitess-operator render`: every object the operator would create for the VitessClusters in a
//! file, offline, as multi-document YAML, in the order the operator creates them.

use std::path::Path;

use serde_json::Value;

use crate::api::{EtcdLockserver, VitessCluster, VitessKeyspace};
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
    let checker = Checker::new();
    let problems: Vec<_> = validate::check_text(&checker, &file, &text)
        .into_iter()
        .filter(validate::Problem::is_error)
        .collect();
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
        // As the API server stores it: nulls replaced by the schema's defaults.
        let cluster: VitessCluster =
            serde_json::from_value(checker.defaulted(doc)).map_err(|source| Error::Decode {
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

/// Every child of one cluster, as YAML documents: the cluster's bundle (the same the cluster
/// controller applies), taken apart field by field, then what the children's controllers make.
pub fn render_cluster(cluster: &VitessCluster) -> Result<String, Error> {
    yaml::to_documents(&cluster_objects(cluster)?).map_err(Error::Output)
}

/// What `render_cluster` prints, as JSON objects in the same order.
pub fn cluster_objects(cluster: &VitessCluster) -> Result<Vec<Value>, Error> {
    let desired::bundle::ClusterBundle {
        children:
            desired::cluster::ClusterChildren {
                etcd,
                cells,
                keyspaces,
                backup_storages,
            },
        vtctld:
            desired::vtctld::VtctldObjects {
                deployments: vtctld_deployments,
                service: vtctld_service,
            },
        gateway_service,
        tablet_service,
        schedules,
        vtadmin,
    } = desired::bundle::cluster(cluster)?;
    let mut objects: Vec<Value> = Vec::new();
    push_all(&mut objects, etcd.iter())?;
    push_all(&mut objects, cells.iter())?;
    for keyspace in &keyspaces {
        objects.push(serde_json::to_value(keyspace)?);
        for shard in desired::keyspace::shards(keyspace)? {
            objects.push(serde_json::to_value(&shard)?);
        }
    }
    push_all(&mut objects, backup_storages.iter())?;
    // What the controllers make of the children: etcd, vtctld, the cluster-wide Services, the
    // VitessBackupSchedules, vtadmin, each cell's vtgates, each shard's tablets and vtorc and, for
    // a shard with backups, its vtbackup-init pod. Services come before what they front and PVCs
    // before their pods, as the controllers apply them.
    if let Some(etcd) = &etcd {
        push_members(&mut objects, etcd)?;
    }
    objects.push(serde_json::to_value(&vtctld_service)?);
    push_all(&mut objects, vtctld_deployments.iter())?;
    objects.push(serde_json::to_value(&gateway_service)?);
    objects.push(serde_json::to_value(&tablet_service)?);
    push_all(&mut objects, schedules.iter())?;
    push_all(&mut objects, vtadmin.service.iter())?;
    for (deployment, secrets) in &vtadmin.cells {
        objects.push(serde_json::to_value(deployment)?);
        push_all(&mut objects, secrets.iter())?;
    }
    for cell in &cells {
        // A cell's own etcd (`lockserver.etcd`), made by the cell's controller.
        if let Some(etcd) = desired::lockserver::local_etcd(cell)? {
            push_etcd(&mut objects, &etcd)?;
        }
        let desired::vtgate::VtgateObjects {
            deployment,
            service,
            autoscaler,
        } = desired::vtgate::build(cell)?;
        objects.push(serde_json::to_value(&service)?);
        objects.push(serde_json::to_value(&deployment)?);
        push_all(&mut objects, autoscaler.iter())?;
    }
    push_tablets(&mut objects, &keyspaces)?;
    Ok(objects)
}

/// What the etcd controller makes of an EtcdLockserver: its Services, PDB, and each member's
/// PVC, then pod.
fn push_members(objects: &mut Vec<Value>, etcd: &EtcdLockserver) -> Result<(), Error> {
    let desired::etcd::EtcdObjects {
        pods,
        pvcs,
        client_service,
        peer_service,
        pdb,
    } = desired::etcd::build(etcd)?;
    push_all(objects, peer_service.iter())?;
    push_all(objects, client_service.iter())?;
    push_all(objects, pdb.iter())?;
    for (pvc, pod) in pvcs.iter().zip(&pods) {
        objects.push(serde_json::to_value(pvc)?);
        objects.push(serde_json::to_value(pod)?);
    }
    Ok(())
}

/// A cell's own EtcdLockserver and what its controller makes of it.
fn push_etcd(objects: &mut Vec<Value>, etcd: &EtcdLockserver) -> Result<(), Error> {
    objects.push(serde_json::to_value(etcd)?);
    push_members(objects, etcd)
}

/// Each shard's tablets (PVC, then pod), its vtorc Deployments and, for a shard with backups,
/// its vtbackup-init pod.
fn push_tablets(objects: &mut Vec<Value>, keyspaces: &[VitessKeyspace]) -> Result<(), Error> {
    for keyspace in keyspaces {
        for shard in desired::keyspace::shards(keyspace)? {
            for tablet in desired::vttablet::build(&shard)? {
                push_all(objects, tablet.pvc.iter())?;
                objects.push(serde_json::to_value(&tablet.pod)?);
            }
            push_all(objects, desired::vtorc::build(&shard)?.iter())?;
            // A new shard's first backup: the shard controller creates this pod while the
            // shard has no complete backup and no primary, which is where a new cluster starts.
            if let Some(init) = desired::vtbackup::init(&shard)? {
                push_all(objects, init.pvc.iter())?;
                objects.push(serde_json::to_value(&init.pod)?);
            }
        }
    }
    Ok(())
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
