//! The operator runs under exactly the Role of `config/rbac/` (which a unit test holds equal
//! to `src/k8s/rbac.rs`): as its ServiceAccount, with a real token, in a fresh namespace, with
//! leader election on and JSON logs. First the API server's own view of the ServiceAccount's
//! permissions must equal the table (nothing missing, nothing extra); then the example
//! cluster must become Ready with no Forbidden in the log ("lacks a verb"). That no row of
//! the table is unused is kept by the table itself: one row per code path, with its reason.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde_json::json;
use std::collections::BTreeSet;
use vitess_operator::k8s::rbac;
use vitess_operator_e2e::requests::{Requests, requests};
use vitess_operator_e2e::{
    FakeTopology, METRICS_ADDRESS, Operator, SharedFake, TestNamespace, apply_yaml, client,
    condition, dynamic, http_address, install_crds, kubectl, kubectl_with_stdin,
    service_account_kubeconfig, tablet_pods, wait_for, workspace_dir,
};

/// Resources every authenticated user may use (system:basic-user), not the operator's grant.
const SELF_REVIEWS: &[&str] = &[
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
];

/// The API server's view of what the ServiceAccount may do on resources in `ns`
/// (`kubectl auth can-i --list`, i.e. a SelfSubjectRulesReview), as (group, resource, verb).
async fn server_grants(ns: &str) -> Result<rbac::Grants> {
    let user = format!("system:serviceaccount:{ns}:vitess-operator");
    let out = kubectl(&["auth", "can-i", "--list", "-n", ns, "--as", &user]).await?;
    let mut grants = rbac::Grants::new();
    for line in out.lines().skip(1) {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        if first.starts_with('[') || SELF_REVIEWS.contains(&first) {
            continue; // non-resource URLs, and what everyone may do
        }
        let (name, sub) = first
            .split_once('/')
            .map_or((first, None), |(n, s)| (n, Some(s)));
        let (resource, group) = name.split_once('.').unwrap_or((name, ""));
        let resource = match sub {
            Some(sub) => format!("{resource}/{sub}"),
            None => resource.to_string(),
        };
        let verbs = line
            .rsplit_once('[')
            .and_then(|(_, v)| v.strip_suffix(']'))
            .with_context(|| format!("no verbs in {line:?}"))?;
        for verb in verbs.split_whitespace() {
            grants.insert((group.to_string(), resource.clone(), verb.to_string()));
        }
    }
    Ok(grants)
}

const TIMEOUT: Duration = Duration::from_secs(120);

/// Grants of the Role that the run below does not use, each with where it is needed (and
/// exercised, without the Role's limits). The test fails when one of them is used here (the
/// list is stale) or when a grant not listed goes unused (exercise it, or say why here).
const NOT_EXERCISED: &[(&str, &str, &str)] = &[];

/// Grants whose use depends on timing, allowed either way: the Event recorder patches an
/// Event's series only when the same Event recurs within its window.
const SOMETIMES: &[(&str, &str)] = &[("events", "patch")];

/// Works the operator as users do, under the Role, one change at a time: backups to a GCS
/// location (its credentials Secret checked) on a schedule, and a vtgate autoscaler (the first
/// backup of the serving shard, its inventory entry, the schedule and its first Job, the HPA,
/// a CronJob an older operator left removed; the Job deleted once it ended); one tablet fewer (a
/// replica drained and its pod deleted); the backup leaves storage (its inventory entry goes);
/// backups and autoscaler removed; a second partitioning beside the first, then the first
/// removed (its shard pruned); a second cell with its vtgate and vtctld, then removed, and the
/// etcd disruption budget and client Service switched off; the keyspace removed (a
/// turndown); vtctld's client TLS configured (its CA read from a Secret).
async fn exercise(
    client: &kube::Client,
    ns: &str,
    operator: &mut Operator,
    fake: &SharedFake,
) -> Result<()> {
    let text = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
    let mut spec = serde_saphyr::from_multiple::<serde_json::Value>(&text)?
        .into_iter()
        .find(|d| d["kind"] == "VitessCluster")
        .context("no VitessCluster in the example")?;
    let all = ListParams::default();
    let backups = dynamic(client, ns, "VitessBackup");
    let storages = dynamic(client, ns, "VitessBackupStorage");
    let shards = dynamic(client, ns, "VitessShard");
    let keyspaces = dynamic(client, ns, "VitessKeyspace");
    let schedules = dynamic(client, ns, "VitessBackupSchedule");
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    let cron_jobs: Api<CronJob> = Api::namespaced(client.clone(), ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);

    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "rbac-gcs"},
        "stringData": {"gcs_key.json": "{}"},
    });
    spec["spec"]["backup"] = json!({
        "engine": "builtin",
        "locations": [{"gcs": {
            "bucket": "rbac-bucket",
            "authSecret": {"name": "rbac-gcs", "key": "gcs_key.json"},
        }}],
        "schedules": [{
            "name": "often",
            "schedule": "* * * * *",
            "backupMethod": "vtctldclient",
            "jobTimeoutMinute": 1,
            "successfulJobsHistoryLimit": 0,
            "failedJobsHistoryLimit": 0,
            "strategies": [{"name": "BackupShard", "keyspace": "commerce", "shard": "-"}],
        }],
    });
    spec["spec"]["cells"][0]["gateway"]["autoscaler"] = json!({"maxReplicas": 2});
    let apply = async |spec: &serde_json::Value| {
        apply_yaml(client, ns, &serde_json::to_string(spec)?).await
    };
    apply(&secret).await?;
    apply(&spec).await?;
    // What an operator that ran schedules as CronJobs left: the upgraded one removes it.
    let cluster = dynamic(client, ns, "VitessCluster").get("example").await?;
    let legacy = json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "example-vbsc-often-legacy",
            "labels": {
                "planetscale.com/component": "vtbackup-schedule",
                "planetscale.com/cluster": "example",
            },
            "ownerReferences": [{
                "apiVersion": "planetscale.com/v2",
                "kind": "VitessCluster",
                "name": "example",
                "uid": cluster.uid().context("the cluster has no uid")?,
                "controller": true,
            }],
        },
        "spec": {
            "schedule": "30 2 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "vitess/lite:v24.0.3"}],
            }}}},
        },
    });
    apply(&legacy).await?;
    let entry = wait_for(
        "the first backup in the inventory, the schedule, its first Job and the HPA",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let listed = backups.list(&all).await?.items;
            let entries: Vec<String> = listed
                .iter()
                .filter(|b| b.data["spec"]["keyspace"].is_null())
                .map(|b| b.name_any())
                .collect();
            let scheduled = schedules.list(&all).await?.items.len();
            let started = jobs
                .list(&ListParams::default().labels("planetscale.com/backup-schedule"))
                .await?
                .items
                .len();
            let scalers = hpas.list(&all).await?.items.len();
            let legacy = cron_jobs.list(&all).await?.items.len();
            *seen = format!(
                "inventory {entries:?}, {scheduled} schedules, {started} Jobs, {scalers} HPAs, \
                 {legacy} CronJobs"
            );
            Ok(match entries.first() {
                Some(entry) if scheduled == 1 && started >= 1 && scalers == 1 && legacy == 0 => {
                    Some(entry.clone())
                }
                _ => None,
            })
        },
    )
    .await?;

    // The first Job ends (its pod succeeds, or it fails at its timeout), and with no finished
    // Job to keep it goes.
    let first_job = jobs
        .list(&ListParams::default().labels("planetscale.com/backup-schedule"))
        .await?
        .items
        .into_iter()
        .map(|j| j.name_any())
        .min()
        .context("no Job")?;
    wait_for(
        &format!("Job {first_job} to end and go"),
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let left = jobs.get_opt(&first_job).await?;
            *seen = format!("{:?}", left.and_then(|j| j.status));
            Ok(seen.starts_with("None").then_some(()))
        },
    )
    .await?;
    // Its run is not started again (the schedule's status remembers it).
    tokio::time::sleep(Duration::from_secs(5)).await;
    anyhow::ensure!(
        jobs.get_opt(&first_job).await?.is_none(),
        "Job {first_job} was made again after the history limit deleted it"
    );

    let pool = "/spec/keyspaces/0/partitionings/0/equal/shardTemplate/tabletPools/0/replicas";
    *spec.pointer_mut(pool).context("the example's pool")? = json!(1);
    apply(&spec).await?;
    wait_for("one tablet", TIMEOUT, async |seen: &mut String| {
        operator.check_running()?;
        let tablets = tablet_pods(&pods, Some("example")).await?.len();
        *seen = format!("{tablets} tablets");
        Ok((tablets == 1).then_some(()))
    })
    .await?;

    {
        let guard = fake.lock().await;
        let fake = guard.as_ref().context("the fake is down")?;
        let names = fake.backups("commerce", "-");
        anyhow::ensure!(!names.is_empty(), "no backup in the fake's storage");
        for name in &names {
            fake.remove_backup("commerce", "-", name);
        }
    }
    wait_for(
        &format!("inventory entry {entry} to go with its backup"),
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let left = backups.get_opt(&entry).await?.is_some();
            *seen = format!("present: {left}");
            Ok((!left).then_some(()))
        },
    )
    .await?;

    if let Some(fields) = spec["spec"].as_object_mut() {
        fields.remove("backup");
    }
    if let Some(gateway) = spec["spec"]["cells"][0]["gateway"].as_object_mut() {
        gateway.remove("autoscaler");
    }
    apply(&spec).await?;
    wait_for(
        "the backup storage, the schedule and the HPA to go",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let left = [
                storages.list(&all).await?.items.len(),
                schedules.list(&all).await?.items.len(),
                hpas.list(&all).await?.items.len(),
            ];
            *seen = format!("storages, schedules, HPAs: {left:?}");
            Ok((left == [0; 3]).then_some(()))
        },
    )
    .await?;

    let first = spec["spec"]["keyspaces"][0]["partitionings"][0].clone();
    let mut second = first.clone();
    second["equal"]["parts"] = json!(2);
    for (partitionings, want) in [(json!([first, second.clone()]), 3), (json!([second]), 2)] {
        spec["spec"]["keyspaces"][0]["partitionings"] = partitionings;
        if want == 2 {
            // No traffic was switched: Vitess still serves the old shard and refuses to forget
            // it, which keeps its object; with pruneShards off the object goes and Vitess'
            // record stays.
            spec["spec"]["topologyReconciliation"] = json!({"pruneShards": false});
        }
        apply(&spec).await?;
        wait_for(
            &format!("{want} VitessShards"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let names: Vec<String> = shards
                    .list(&all)
                    .await?
                    .items
                    .iter()
                    .map(ResourceExt::name_any)
                    .collect();
                *seen = format!("{names:?}");
                Ok((names.len() == want).then_some(()))
            },
        )
        .await?;
    }

    // A second cell with its vtgate and vtctld, then gone; and the etcd disruption budget and
    // client Service switched off.
    let cells = spec["spec"]["cells"].clone();
    let mut zone2 = cells[0].clone();
    zone2["name"] = json!("zone2");
    zone2["zone"] = json!("zone2");
    let mut two = cells.as_array().cloned().unwrap_or_default();
    two.push(zone2);
    spec["spec"]["cells"] = json!(two);
    spec["spec"]["vitessDashboard"]["cells"] = json!(["zone1", "zone2"]);
    apply(&spec).await?;
    let vitess_cells = dynamic(client, ns, "VitessCell");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns);
    let vtctlds = ListParams::default().labels("planetscale.com/component=vtctld");
    let mut count = async |want: [usize; 3]| {
        let operator = &mut *operator;
        wait_for(
            &format!("VitessCells, vtctld Deployments, PodDisruptionBudgets: {want:?}"),
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let now = [
                    vitess_cells.list(&all).await?.items.len(),
                    deployments.list(&vtctlds).await?.items.len(),
                    budgets.list(&all).await?.items.len(),
                ];
                *seen = format!("{now:?}");
                Ok((now == want).then_some(()))
            },
        )
        .await
    };
    count([2, 2, 1]).await?;
    spec["spec"]["cells"] = cells;
    spec["spec"]["vitessDashboard"]["cells"] = json!(["zone1"]);
    spec["spec"]["globalLockserver"] =
        json!({"etcd": {"createPDB": false, "createClientService": false}});
    apply(&spec).await?;
    count([1, 1, 0]).await?;

    spec["spec"]["keyspaces"] = json!([]);
    apply(&spec).await?;
    wait_for("the keyspace to go", TIMEOUT, async |seen: &mut String| {
        operator.check_running()?;
        let left = keyspaces.list(&all).await?.items.len();
        *seen = format!("{left} VitessKeyspaces");
        Ok((left == 0).then_some(()))
    })
    .await?;

    // vtctld over TLS: the operator reads the CA from its Secret (this one holds no
    // certificate, so the cluster then says it cannot reach vtctld).
    apply(&json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "rbac-vtctld-ca"},
        "stringData": {"ca.crt": "not a certificate"},
    }))
    .await?;
    spec["spec"]["vitessDashboard"]["clientTLS"] =
        json!({"caSecret": {"name": "rbac-vtctld-ca", "key": "ca.crt"}});
    apply(&spec).await?;
    let address = http_address(operator).await?;
    wait_for(
        "the operator to read the CA Secret",
        TIMEOUT,
        async |seen: &mut String| {
            operator.check_running()?;
            let used = requests(&address).await?;
            let gets = used
                .get(&("get".to_string(), "secrets".to_string()))
                .copied()
                .unwrap_or(0);
            *seen = format!("{gets} GETs of Secrets");
            Ok((gets > 0).then_some(()))
        },
    )
    .await
}

/// Holds what the operator did (its request counter) against the Role: every (verb,
/// resource) used is granted, and every grant is used or listed in [`NOT_EXERCISED`].
/// A server-side apply is a PATCH that the API server authorizes as `create` when the object
/// is new, so a resource patched counts as created too where the Role grants both (the
/// children it applied did not exist before the run). Prints the table.
fn check_used_against_the_role(used: &Requests) -> Result<()> {
    let table = rbac::table();
    let granted: BTreeSet<(String, String)> = table
        .iter()
        .map(|(_, resource, verb)| (resource.clone(), verb.clone()))
        .collect();
    let mut exercised: BTreeSet<(String, String)> = BTreeSet::new();
    let mut beyond = Vec::new();
    for ((verb, resource), count) in used {
        if *count == 0 || resource == "nonresource" {
            continue;
        }
        let key = (resource.clone(), verb.clone());
        if !granted.contains(&key) {
            beyond.push(format!("{verb} {resource} ({count})"));
        }
        exercised.insert(key);
        if verb == "patch" && granted.contains(&(resource.clone(), "create".into())) {
            exercised.insert((resource.clone(), "create".into()));
        }
    }
    let mut lines = vec!["resource | verb | requests in this run".to_string()];
    for (resource, verb) in &granted {
        let count = used
            .get(&(verb.clone(), resource.clone()))
            .copied()
            .unwrap_or(0);
        let note = match NOT_EXERCISED
            .iter()
            .find(|(r, v, _)| r == resource && v == verb)
        {
            Some((_, _, why)) => format!("not here: {why}"),
            None if count == 0 && exercised.contains(&(resource.clone(), verb.clone())) => {
                "by server-side apply (patch)".to_string()
            }
            None => count.to_string(),
        };
        lines.push(format!("{resource} | {verb} | {note}"));
    }
    eprintln!(
        "rbac: the Role against what the operator did\n{}",
        lines.join("\n")
    );
    let listed: BTreeSet<(String, String)> = NOT_EXERCISED
        .iter()
        .map(|(r, v, _)| (r.to_string(), v.to_string()))
        .collect();
    let sometimes: BTreeSet<(String, String)> = SOMETIMES
        .iter()
        .map(|(r, v)| (r.to_string(), v.to_string()))
        .collect();
    let unused: Vec<&(String, String)> = granted
        .iter()
        .filter(|g| !exercised.contains(*g) && !listed.contains(*g) && !sometimes.contains(*g))
        .collect();
    let stale: Vec<&(String, String)> = listed.intersection(&exercised).collect();
    let unknown: Vec<&(String, String)> = listed.difference(&granted).collect();
    if !beyond.is_empty() || !unused.is_empty() || !stale.is_empty() || !unknown.is_empty() {
        bail!(
            "the operator's requests do not match the Role (src/k8s/rbac.rs):\n\
             used but not granted: {beyond:?}\n\
             granted, not used here and not in NOT_EXERCISED: {unused:?}\n\
             in NOT_EXERCISED but used here: {stale:?}\n\
             in NOT_EXERCISED but not granted: {unknown:?}"
        );
    }
    Ok(())
}

/// `config/rbac/*.yaml` with every namespace set to `ns`.
fn rbac_objects(ns: &str) -> Result<String> {
    let dir = workspace_dir().join("config/rbac");
    let mut out = String::new();
    for file in ["service_account.yaml", "role.yaml", "role_binding.yaml"] {
        let text = std::fs::read_to_string(dir.join(file))?;
        let mut object: serde_json::Value = serde_saphyr::from_str(&text)?;
        object["metadata"]["namespace"] = ns.into();
        if let Some(subjects) = object["subjects"].as_array_mut() {
            for subject in subjects {
                subject["namespace"] = ns.into();
            }
        }
        out.push_str(&serde_json::to_string(&object)?);
        out.push('\n');
    }
    Ok(out)
}

/// The log lines that say the API server refused a request.
fn forbidden(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(" 403") || l.to_ascii_lowercase().contains("forbidden"))
        .collect()
}

#[tokio::test]
async fn operator_runs_under_the_config_role_without_forbidden() -> Result<()> {
    install_crds().await?;
    let client = client().await?;
    let ns = TestNamespace::create(&client, "rbac").await?;
    kubectl_with_stdin(
        &["apply", "-n", ns.name(), "-f", "-"],
        Some(&rbac_objects(ns.name())?),
    )
    .await?;
    // The API server grants the ServiceAccount exactly the table: nothing is missing, and no
    // other binding (a wildcard, an aggregated role) gives it more.
    let granted = server_grants(ns.name()).await?;
    let needed = rbac::table();
    if granted != needed {
        bail!(
            "the API server grants the operator's ServiceAccount something else than src/k8s/rbac.rs:\nmissing: {:?}\nextra: {:?}",
            needed.difference(&granted).collect::<Vec<_>>(),
            granted.difference(&needed).collect::<Vec<_>>()
        );
    }
    let kubeconfig = service_account_kubeconfig(ns.name(), "vitess-operator").await?;
    let kubeconfig_env = format!("KUBECONFIG={}", kubeconfig.display());
    let binary = Operator::binary();
    let binary = binary.to_string_lossy();
    // The shards' primaries come from a fake vtctld that registers the Ready tablet pods.
    let vtctld = FakeTopology::start(&client, ns.name()).await?;
    let vtctld_address = vtctld.vtctld_address();
    let mut operator = Operator::start_binary(
        std::path::Path::new("/usr/bin/env"),
        // A log of its own: the log file of a test name is appended to across runs.
        &format!("rbac-{}", ns.name()),
        &[
            &kubeconfig_env,
            &binary,
            "run",
            "--namespace",
            ns.name(),
            "--vtctld-address",
            &vtctld_address,
            METRICS_ADDRESS,
            "--leader-elect",
            "--log-format=json",
            // The inventory follows the fake's storage within the test's patience.
            "--backup-list-period-seconds=2",
        ],
    )?;
    let result = async {
        let text = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
        apply_yaml(&client, ns.name(), &text).await?;
        let clusters = dynamic(&client, ns.name(), "VitessCluster");
        wait_for(
            "VitessCluster example to be Ready",
            TIMEOUT,
            async |seen: &mut String| {
                operator.check_running()?;
                let cluster = clusters.get("example").await?;
                let ready = condition(&cluster, "Ready");
                *seen = format!("Ready={ready:?} status={}", cluster.data["status"]);
                Ok((ready.as_deref() == Some("True")).then_some(()))
            },
        )
        .await?;
        exercise(&client, ns.name(), &mut operator, vtctld.shared()).await?;
        // One more resync's worth of work (status writes, events) before reading the log.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let address = http_address(&mut operator).await?;
        let used = requests(&address).await?;
        check_used_against_the_role(&used)?;
        let log = operator.log_contents()?;
        let denied = forbidden(&log);
        if !denied.is_empty() {
            bail!(
                "the operator was denied under config/rbac/role.yaml:\n{}",
                denied.join("\n")
            );
        }
        if !log.contains("became the leader") {
            bail!("the operator never became the leader (Lease permissions?)");
        }
        // --log-format json: one JSON object per line, with a level and a message.
        for line in log.lines() {
            let entry: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("a log line that is not JSON: {line}"))?;
            if entry["level"].as_str().is_none() || entry["message"].as_str().is_none() {
                bail!("a JSON log line without level or message: {line}");
            }
        }
        anyhow::Ok(())
    }
    .await;
    let stopped = operator.stop().await;
    vtctld.stop().await;
    if let Err(err) = result {
        let log = operator.log_contents().unwrap_or_default();
        bail!("{err:#}\n--- operator log ---\n{log}");
    }
    stopped?;
    std::fs::remove_file(&kubeconfig).context("removing the token kubeconfig")?;
    ns.delete(TIMEOUT).await
}
