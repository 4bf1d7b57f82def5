//! No secret value leaves its Secret (issue 18, item 8): every Secret the maximal fixture
//! names (backup credentials for GCS and S3, vtgate's static users and TLS, vtctld's client
//! TLS, which the operator itself reads, an external datastore's credentials, the init
//! script) holds a value no one could guess, and once the operator has worked on both
//! clusters for a while that value, raw or base64, is nowhere a user or an attacker with
//! read access to anything but Secrets could see: not in the operator's log (its errors
//! included: the TLS values are not valid certificates, so it fails on them), not in an
//! Event, not in any object's spec or status in the namespace (flags, environment, status
//! messages), not at its /metrics, /healthz or /readyz.
//!
//! On KWOK pods with the fake vtctld (which speaks no TLS: the operator's TLS connection to it
//! fails, as it would with wrong certificates).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Client, ResourceExt};
use vitess_operator_e2e::{
    apply_yaml, condition_detail, dynamic, e2e_dir, http_address, http_get, unique_suffix,
    wait_for, with_fake_vtctld,
};

const TIMEOUT: Duration = Duration::from_secs(180);
/// How long the operator works on the clusters once all their shards exist.
const WORK: Duration = Duration::from_secs(20);

/// Every Secret key the fixture names.
const SECRETS: &[(&str, &[&str])] = &[
    ("gcs-auth", &["gcs_key.json"]),
    ("s3-auth", &["credentials"]),
    ("max-config", &["users.json", "init_db.sql"]),
    ("vtgate-tls", &["tls.crt", "tls.key", "ca.crt"]),
    ("vtctld-tls", &["ca.crt", "client.crt", "client.key"]),
    ("legacy-db", &["credentials.json", "ca.crt"]),
];

/// The kinds whose objects are searched (everything in the namespace a user reads, Secrets
/// aside): (group, version, kind, plural).
const KINDS: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "pods"),
    ("", "v1", "Service", "services"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("apps", "v1", "Deployment", "deployments"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
    ),
    ("events.k8s.io", "v1", "Event", "events"),
    ("planetscale.com", "v2", "VitessCluster", "vitessclusters"),
    ("planetscale.com", "v2", "VitessCell", "vitesscells"),
    ("planetscale.com", "v2", "VitessKeyspace", "vitesskeyspaces"),
    ("planetscale.com", "v2", "VitessShard", "vitessshards"),
    ("planetscale.com", "v2", "EtcdLockserver", "etcdlockservers"),
    (
        "planetscale.com",
        "v2",
        "VitessBackupStorage",
        "vitessbackupstorages",
    ),
    ("planetscale.com", "v2", "VitessBackup", "vitessbackups"),
    (
        "planetscale.com",
        "v2",
        "VitessBackupSchedule",
        "vitessbackupschedules",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_appears_outside_its_secret() -> Result<()> {
    with_fake_vtctld("secrets", async |client, ns, operator, _, _| {
        let canaries = create_secrets(client, ns).await?;
        let fixture = e2e_dir().join("tests/fixtures/flags-maximal.yaml");
        let yaml = std::fs::read_to_string(&fixture)
            .with_context(|| format!("reading {}", fixture.display()))?;
        apply_yaml(client, ns, &yaml).await?;

        // Both clusters worked on: every shard and tablet pod made, and the operator has
        // read vtctld's client TLS and failed with it (the certificates are not), which the
        // shards of that cluster say.
        let shards = dynamic(client, ns, "VitessShard");
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let operator_log = &mut *operator;
        let said = wait_for(
            "the 4 shards and 9 tablet pods of both clusters, maxgcs' shards failing on its TLS",
            TIMEOUT,
            async |seen: &mut String| {
                operator_log.check_running()?;
                let all = shards.list(&ListParams::default()).await?.items;
                let tablets = pods
                    .list(&ListParams::default().labels("planetscale.com/component=vttablet"))
                    .await?
                    .items
                    .len();
                let tls: Vec<String> = all
                    .iter()
                    .filter(|s| {
                        s.labels()
                            .get("planetscale.com/cluster")
                            .map(String::as_str)
                            == Some("maxgcs")
                    })
                    .filter_map(|s| condition_detail(s, "VtctldReachable"))
                    .filter(|(status, _, _)| status == "False")
                    .map(|(_, _, message)| message)
                    .collect();
                *seen = format!(
                    "{} shards, {tablets} tablet pods, maxgcs shards unreachable: {tls:?}",
                    all.len()
                );
                Ok((all.len() == 4 && tablets == 9 && tls.len() == 3).then_some(tls))
            },
        )
        .await?;
        eprintln!("secrets: maxgcs' shards say {:?}", said[0]);
        tokio::time::sleep(WORK).await;
        operator.check_running()?;

        let mut places: Vec<(String, String)> = Vec::new();
        places.push(("the operator's log".into(), operator.log_contents()?));
        let address = http_address(operator).await?;
        for path in ["/metrics", "/healthz", "/readyz"] {
            let (_, body) = http_get(&address, path).await?;
            places.push((format!("the operator's {path}"), body));
        }
        for &(group, version, kind, plural) in KINDS {
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, version, kind),
                plural,
            );
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
            for object in api
                .list(&ListParams::default())
                .await
                .with_context(|| format!("listing {kind}s"))?
                .items
            {
                let text = serde_json::to_string(&object)?;
                places.push((format!("{kind} {}", object.name_any()), text));
            }
        }
        let read = places.len();
        let leaks: Vec<String> = places
            .iter()
            .flat_map(|(place, text)| {
                canaries
                    .iter()
                    .filter(|c| c.found_in(text))
                    .map(move |c| format!("{}/{} in {place}", c.secret, c.key))
            })
            .collect();
        eprintln!(
            "secrets: {} values of {} Secrets looked for in {read} places (log, endpoints, \
             objects of {} kinds)",
            canaries.len(),
            SECRETS.len(),
            KINDS.len()
        );
        ensure!(
            leaks.is_empty(),
            "secret values leaked: {}",
            leaks.join("; ")
        );
        // The search can find: the fixture's own text would hold none, the Secrets do.
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let held = serde_json::to_string(&secrets.get("vtctld-tls").await?)?;
        ensure!(
            canaries.iter().any(|c| c.found_in(&held)),
            "the search does not find the values in the Secret that holds them"
        );
        Ok(())
    })
    .await
}

/// One Secret value no one could guess, and how it would look if copied.
struct Canary {
    secret: &'static str,
    key: &'static str,
    /// The unique part of the value.
    marker: String,
    /// The whole value in base64, as a Secret's `data` (or a copy of it) holds it.
    encoded: String,
}

impl Canary {
    fn found_in(&self, text: &str) -> bool {
        text.contains(&self.marker) || text.contains(&self.encoded)
    }
}

/// Creates every Secret of [`SECRETS`] with values that hold a unique marker, shaped as
/// their key suggests (PEM, JSON, SQL, S3 credentials).
async fn create_secrets(client: &Client, ns: &str) -> Result<Vec<Canary>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let suffix = unique_suffix();
    let mut canaries = Vec::new();
    for (n, &(secret, keys)) in SECRETS.iter().enumerate() {
        let mut data = std::collections::BTreeMap::new();
        for (k, &key) in keys.iter().enumerate() {
            let marker = format!("Canary{suffix}x{n}x{k}");
            let value = if key.ends_with(".crt") || key.ends_with(".key") {
                let kind = if key.ends_with(".key") {
                    "PRIVATE KEY"
                } else {
                    "CERTIFICATE"
                };
                format!("-----BEGIN {kind}-----\n{marker}\n-----END {kind}-----\n")
            } else if key.ends_with(".json") {
                format!("{{\"user\": \"vitess\", \"password\": \"{marker}\"}}")
            } else if key.ends_with(".sql") {
                format!("CREATE USER 'app'@'%' IDENTIFIED BY '{marker}';")
            } else {
                format!("[default]\naws_access_key_id = AKIA\naws_secret_access_key = {marker}\n")
            };
            // As the API server shows it in `data` (k8s-openapi's ByteString is base64 in JSON).
            let encoded =
                serde_json::to_value(k8s_openapi::ByteString(value.clone().into_bytes()))?
                    .as_str()
                    .context("a base64 string")?
                    .to_string();
            data.insert(key.to_string(), value);
            canaries.push(Canary {
                secret,
                key,
                marker,
                encoded,
            });
        }
        let object: Secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret},
            "stringData": data,
        }))?;
        api.create(&PostParams::default(), &object)
            .await
            .with_context(|| format!("creating Secret {secret}"))?;
    }
    Ok(canaries)
}
