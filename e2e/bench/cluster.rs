//! The generated VitessClusters of each size, and what the operator is expected to make of them
//! (read from `vitess-operator render`, the same builders the controllers use).

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// One size: `clusters` VitessClusters of `shards` shards each, 2 replica tablets per shard.
#[derive(Clone, Debug)]
pub struct Size {
    pub clusters: usize,
    pub shards: usize,
}

impl Size {
    /// `256` (one cluster) or `10x8` (ten clusters of 8 shards).
    pub fn parse(text: &str) -> Result<Self> {
        let (clusters, shards) = match text.split_once('x') {
            Some((c, s)) => (c.parse()?, s.parse()?),
            None => (1, text.parse()?),
        };
        if clusters == 0 || shards == 0 {
            bail!("size {text}: clusters and shards must be at least 1");
        }
        Ok(Self { clusters, shards })
    }

    /// `256` or `10x8`.
    pub fn label(&self) -> String {
        if self.clusters == 1 {
            self.shards.to_string()
        } else {
            format!("{}x{}", self.clusters, self.shards)
        }
    }

    pub fn total_shards(&self) -> usize {
        self.clusters * self.shards
    }

    /// The YAML a user would apply: per cluster its init-script Secret and the VitessCluster.
    /// Clusters differ in keyspace name too, so that their tablet UIDs (which hash cell,
    /// keyspace and key range) differ in the one fake vtctld.
    pub fn yaml(&self) -> String {
        (0..self.clusters)
            .map(|i| {
                let (name, keyspace) = if self.clusters == 1 {
                    ("bench".to_string(), "ks".to_string())
                } else {
                    (format!("bench{i}"), format!("ks{i}"))
                };
                cluster_yaml(&name, &keyspace, self.shards)
            })
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

fn cluster_yaml(name: &str, keyspace: &str, shards: usize) -> String {
    format!(
        r#"apiVersion: v1
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
    vtctld: vitess/lite:v24.0.3
    vtgate: vitess/lite:v24.0.3
    vttablet: vitess/lite:v24.0.3
    mysqld:
      mysql80Compatible: vitess/lite:v24.0.3
  cells:
  - name: zone1
    gateway: {{replicas: 1}}
  vitessDashboard:
    cells: [zone1]
    replicas: 1
  keyspaces:
  - name: {keyspace}
    durabilityPolicy: none
    turndownPolicy: Immediate
    partitionings:
    - equal:
        parts: {shards}
        shardTemplate:
          databaseInitScriptSecret: {{name: {name}-config, key: init_db.sql}}
          tabletPools:
          - cell: zone1
            type: replica
            replicas: 2
            vttablet: {{}}
            mysqld: {{}}
            dataVolumeClaimTemplate:
              accessModes: ["ReadWriteOnce"]
              resources:
                requests: {{storage: 1Gi}}
"#
    )
}

/// What `render` says the operator makes for a YAML file.
#[derive(Clone, Debug, Default)]
pub struct Expected {
    /// The rendered text (what the floor applies).
    pub rendered: String,
    /// `Kind/name` of every object rendered.
    pub objects: BTreeSet<String>,
    /// Pods rendered plus the replicas of rendered Deployments: every pod that will run.
    pub pods: usize,
    /// Kinds rendered (watched by the observer).
    pub kinds: BTreeSet<String>,
}

/// Runs `operator render -f file` and reads the objects it prints.
pub async fn render(operator: &Path, file: &Path) -> Result<Expected> {
    let output = tokio::process::Command::new(operator)
        .args(["render", "-f"])
        .arg(file)
        .output()
        .await
        .with_context(|| format!("running {} render", operator.display()))?;
    if !output.status.success() {
        bail!(
            "render -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let rendered = String::from_utf8(output.stdout).context("render printed non-UTF-8")?;
    let mut expected = Expected::default();
    // Document by document: one YAML parse of the whole output (megabytes at 256 shards)
    // exceeds the parser's budget.
    let docs = rendered.split("\n---\n").map(|text| {
        vitess_operator::cli::yaml::parse_documents(text).context("parsing render output")
    });
    for doc in docs.collect::<Result<Vec<_>>>()?.into_iter().flatten() {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        match kind.as_str() {
            "Pod" => expected.pods += 1,
            "Deployment" => {
                expected.pods += doc["spec"]["replicas"]
                    .as_u64()
                    .map_or(1, |r| usize::try_from(r).unwrap_or(usize::MAX))
            }
            _ => {}
        }
        expected.objects.insert(format!("{kind}/{name}"));
        expected.kinds.insert(kind);
    }
    expected.rendered = rendered;
    Ok(expected)
}
