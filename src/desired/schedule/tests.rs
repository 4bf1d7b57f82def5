//! The tests of [`super`].

use super::*;
use k8s_openapi::api::core::v1::Affinity;

fn cluster(yaml: &str) -> VitessCluster {
    serde_saphyr::from_str(yaml).unwrap()
}

fn example() -> VitessCluster {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/scheduled-backups.yaml"
    );
    let mut cluster = cluster(&std::fs::read_to_string(path).unwrap());
    cluster.metadata.namespace = Some("prod".into());
    cluster
}

fn pod_of(job: &CronJob) -> PodSpec {
    let spec = job.spec.clone().unwrap();
    spec.job_template.spec.unwrap().template.spec.unwrap()
}

/// Every step of the pod, in the order it runs: (container name, command + args).
fn steps(job: &CronJob) -> Vec<(String, Vec<String>)> {
    let pod = pod_of(job);
    pod.init_containers
        .unwrap_or_default()
        .into_iter()
        .chain(pod.containers)
        .map(|c| {
            let mut line = c.command.unwrap();
            line.extend(c.args.unwrap());
            (c.name, line)
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const SERVER: &str = "--server=example-vtctld-625ee430.prod.svc:15999";

#[test]
fn one_cron_job_per_schedule_that_runs_backup_shard() {
    let jobs = build(&example()).unwrap();
    assert_eq!(jobs.len(), 2);

    let nightly = &jobs[0];
    assert_eq!(
        nightly.metadata.name.as_deref(),
        Some(names::cluster::backup_schedule("example", "nightly-commerce").as_str())
    );
    assert!(nightly.metadata.name.as_ref().unwrap().len() <= 52);
    assert_eq!(nightly.metadata.namespace.as_deref(), Some("prod"));
    let want = labels::set(&[
        ("planetscale.com/component", "vtbackup-schedule"),
        ("planetscale.com/cluster", "example"),
        ("planetscale.com/backup-schedule", "nightly-commerce"),
    ]);
    assert_eq!(nightly.metadata.labels.as_ref(), Some(&want));
    let spec = nightly.spec.as_ref().unwrap();
    assert_eq!(spec.schedule, "30 2 * * *");
    assert_eq!(spec.suspend, Some(false));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert_eq!(spec.successful_jobs_history_limit, Some(3));
    assert_eq!(spec.failed_jobs_history_limit, Some(5));
    assert_eq!(spec.starting_deadline_seconds, None);
    let job = spec.job_template.spec.as_ref().unwrap();
    assert_eq!(job.active_deadline_seconds, Some(30 * 60));
    assert_eq!(job.backoff_limit, Some(BACKOFF_LIMIT));
    let template = spec.job_template.metadata.as_ref().unwrap();
    assert_eq!(template.labels.as_ref(), Some(&want));
    let pod_meta = job.template.metadata.as_ref().unwrap();
    assert_eq!(pod_meta.labels.as_ref(), Some(&want));

    assert_eq!(
        steps(nightly),
        [(
            names::join_service(&["backup", "commerce", "x-x"]),
            strings(&["/vt/bin/vtctldclient", SERVER, "BackupShard", "commerce/-"])
        )]
    );
    let pod = pod_of(nightly);
    assert!(pod.init_containers.is_none());
    assert_eq!(pod.restart_policy.as_deref(), Some("OnFailure"));
    let container = &pod.containers[0];
    // The image vtctld runs (the operator's default here), which has vtctldclient.
    assert_eq!(container.image.as_deref(), Some(defaults::VITESS_IMAGE));
    let resources = container.resources.as_ref().unwrap();
    assert_eq!(
        resources.requests.as_ref().unwrap()["memory"].0,
        "512Mi".to_string()
    );
    assert!(pod.volumes.is_none() && container.volume_mounts.is_none());

    // Two shards: the first as an init container, so they run one after the other.
    let customer = &jobs[1];
    let spec = customer.spec.as_ref().unwrap();
    assert_eq!(spec.schedule, "0 */6 * * *");
    assert_eq!(spec.successful_jobs_history_limit, None);
    let job = spec.job_template.spec.as_ref().unwrap();
    assert_eq!(job.active_deadline_seconds, Some(600), "default 10 minutes");
    let steps = steps(customer);
    assert_eq!(
        steps
            .iter()
            .map(|(_, line)| line.clone())
            .collect::<Vec<_>>(),
        [
            strings(&[
                "/vt/bin/vtctldclient",
                SERVER,
                "BackupShard",
                "customer/-80"
            ]),
            strings(&[
                "/vt/bin/vtctldclient",
                SERVER,
                "BackupShard",
                "customer/80-"
            ]),
        ]
    );
    assert_eq!(pod_of(customer).init_containers.unwrap().len(), 1);
    assert_ne!(steps[0].0, steps[1].0);
}

const SCOPES: &str = r#"
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata: {name: example, namespace: default}
spec:
  cells: [{name: zone1}]
  vitessDashboard:
    clientTLS:
      caSecret: {name: vtctld-ca, key: ca.pem}
      certSecret: {name: vtctld-client, key: tls.crt}
      keySecret: {name: vtctld-client, key: tls.key}
      serverName: vtctld.example
  backup:
    locations: [{volume: {emptyDir: {}}}]
    schedules:
    - name: everything
      schedule: "* * * * *"
      suspend: true
      concurrencyPolicy: Allow
      startingDeadlineSeconds: 30
      allowedMissedRun: 5
      jobTimeoutMinute: 0
      annotations: {team: dba}
      affinity:
        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
            - matchExpressions: [{key: backups, operator: Exists}]
      strategies:
      - name: customer-first
        scope: Keyspace
        keyspace: customer
        extraFlags: {allow_primary: "true", upgrade-safe: "true"}
      - name: the-rest
        scope: Cluster
      - name: again
        keyspace: commerce
        shard: "-"
  keyspaces:
  - name: commerce
    partitionings:
    - equal: {parts: 1, shardTemplate: {databaseInitScriptSecret: {name: init, key: init.sql}}}
  - name: customer
    partitionings:
    - equal: {parts: 2, shardTemplate: {databaseInitScriptSecret: {name: init, key: init.sql}}}
"#;

/// The Go operator's own test YAML (102_initial_cluster_keyspace_backup_schedule): a
/// cluster-wide schedule and one for a keyspace, both by `frequency`.
const GO_FREQUENCY: &str = r#"
apiVersion: planetscale.com/v2
kind: VitessCluster
metadata: {name: example, namespace: default}
spec:
  cells: [{name: zone1}]
  vitessDashboard:
    tolerations: [{key: dedicated, operator: Exists}]
  backup:
    locations: [{volume: {emptyDir: {}}}]
    schedules:
    - name: cluster-every-day
      frequency: 24h
      strategies: [{name: all, scope: Cluster}]
    - name: customer-every-two-hours
      frequency: 2h
      backupMethod: vtctldclient
      tolerations: []
      strategies: [{name: customer-all, scope: Keyspace, keyspace: customer}]
  keyspaces:
  - name: commerce
    partitionings:
    - equal: {parts: 1, shardTemplate: {databaseInitScriptSecret: {name: init, key: init.sql}}}
  - name: customer
    partitionings:
    - equal: {parts: 2, shardTemplate: {databaseInitScriptSecret: {name: init, key: init.sql}}}
"#;

#[test]
fn frequency_tolerations_and_keyspaces_with_their_own_schedule() {
    let cluster = cluster(GO_FREQUENCY);
    let jobs = build(&cluster).unwrap();
    let crons: Vec<String> = jobs
        .iter()
        .map(|j| j.spec.as_ref().unwrap().schedule.clone())
        .collect();
    // Fixed offsets within the period, from the cluster's and the schedule's names.
    let schedules = &cluster.spec.backup.as_ref().unwrap().schedules;
    assert_eq!(crons[0], schedules[0].cron("example").unwrap());
    assert_eq!(crons[1], schedules[1].cron("example").unwrap());
    let daily: Vec<&str> = crons[0].split(' ').collect();
    assert_eq!(daily[2..], ["*", "*", "*"], "{}", crons[0]);
    assert!(daily[0].parse::<u32>().unwrap() < 60 && daily[1].parse::<u32>().unwrap() < 24);
    assert!(crons[1].contains("/2 * * *"), "{}", crons[1]);
    // Another cluster or schedule name gives another offset, the same names the same one.
    assert_eq!(schedules[0].cron("example"), schedules[0].cron("example"));

    // customer has a schedule of its own, so the cluster-wide one leaves it out.
    let got: Vec<String> = targets(&cluster, &schedules[0])
        .unwrap()
        .iter()
        .map(|t| format!("{}/{}", t.keyspace, t.shard))
        .collect();
    assert_eq!(got, ["commerce/-"]);

    // Unset tolerations: vtctld's; an empty list clears them.
    let tolerations = pod_of(&jobs[0]).tolerations.unwrap();
    assert_eq!(tolerations[0].key.as_deref(), Some("dedicated"));
    assert_eq!(pod_of(&jobs[1]).tolerations, Some(vec![]));

    // A frequency cron cannot express is the operator's error, naming the field.
    let mut bad = cluster.clone();
    bad.spec.backup.as_mut().unwrap().schedules[1].frequency = "7m".into();
    let err = build(&bad).unwrap_err().to_string();
    assert!(
        err.contains("spec.backup.schedules[1] (customer-every-two-hours)")
            && err.contains("\"7m\" cannot be run exactly by cron"),
        "{err}"
    );
}

#[test]
fn scopes_expand_to_shards_each_backed_up_once() {
    let cluster = cluster(SCOPES);
    let schedule = &cluster.spec.backup.as_ref().unwrap().schedules[0];
    let got: Vec<String> = targets(&cluster, schedule)
        .unwrap()
        .iter()
        .map(|t| format!("{}/{}", t.keyspace, t.shard))
        .collect();
    assert_eq!(got, ["customer/-80", "customer/80-", "commerce/-"]);
}

#[test]
fn tls_flags_name_mounted_files_and_schedule_settings_pass_through() {
    let jobs = build(&cluster(SCOPES)).unwrap();
    let job = &jobs[0];
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.suspend, Some(true));
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Allow"));
    assert_eq!(spec.starting_deadline_seconds, Some(30));
    let job_spec = spec.job_template.spec.as_ref().unwrap();
    assert_eq!(job_spec.active_deadline_seconds, Some(600));
    let pod_meta = job_spec.template.metadata.as_ref().unwrap();
    assert_eq!(
        pod_meta.annotations.as_ref().unwrap().get("team"),
        Some(&"dba".to_string())
    );
    let pod = pod_of(job);
    let affinity: &Affinity = pod.affinity.as_ref().unwrap();
    assert!(affinity.node_affinity.is_some());

    let global = [
        "/vt/bin/vtctldclient",
        "--server=example-vtctld-625ee430.default.svc:15999",
        "--vtctld-grpc-ca=/vt/secrets/vtctld-tls-ca/ca.pem",
        "--vtctld-grpc-cert=/vt/secrets/vtctld-tls-cert/tls.crt",
        "--vtctld-grpc-key=/vt/secrets/vtctld-tls-key/tls.key",
        "--vtctld-grpc-server-name=vtctld.example",
        "BackupShard",
    ];
    let with = |extra: &[&str], target: &str| {
        let mut line = strings(&global);
        line.extend(strings(extra));
        line.push(target.into());
        line
    };
    let flags = ["--allow-primary=true", "--upgrade-safe=true"];
    assert_eq!(
        steps(job)
            .into_iter()
            .map(|(_, line)| line)
            .collect::<Vec<_>>(),
        [
            with(&flags, "customer/-80"),
            with(&flags, "customer/80-"),
            with(&[], "commerce/-"),
        ]
    );

    // Each file is its Secret's one key, mounted read-only into every step.
    let volumes = pod.volumes.clone().unwrap();
    let secrets: Vec<(String, String, String)> = volumes
        .iter()
        .map(|v| {
            let secret = v.secret.as_ref().unwrap();
            let item = &secret.items.as_ref().unwrap()[0];
            (
                v.name.clone(),
                secret.secret_name.clone().unwrap(),
                item.key.clone(),
            )
        })
        .collect();
    assert_eq!(
        secrets,
        [
            (
                "vtctld-tls-ca-secret".into(),
                "vtctld-ca".into(),
                "ca.pem".into()
            ),
            (
                "vtctld-tls-cert-secret".into(),
                "vtctld-client".into(),
                "tls.crt".into()
            ),
            (
                "vtctld-tls-key-secret".into(),
                "vtctld-client".into(),
                "tls.key".into()
            ),
        ]
    );
    let all = pod
        .init_containers
        .clone()
        .unwrap()
        .into_iter()
        .chain(pod.containers.clone());
    for container in all {
        let mounts = container.volume_mounts.unwrap();
        assert_eq!(mounts.len(), 3);
        assert!(mounts.iter().all(|m| m.read_only == Some(true)));
    }
    // No secret content anywhere in the pod spec, only paths.
    let text = serde_json::to_string(&pod).unwrap();
    assert!(!text.contains("BEGIN"));
}

#[test]
fn removing_a_schedule_leaves_the_other_cron_job_as_it_was() {
    // The controller prunes the owned, labelled CronJobs whose names are not built any
    // more: the removed schedule's, and only it.
    let before = build(&example()).unwrap();
    let mut cluster = example();
    cluster.spec.backup.as_mut().unwrap().schedules.remove(0);
    let after = build(&cluster).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0], before[1]);
    assert!(
        after
            .iter()
            .all(|c| c.metadata.name != before[0].metadata.name)
    );
}

#[test]
fn no_backup_or_no_schedules_make_no_cron_jobs() {
    let mut cluster = example();
    cluster.spec.backup.as_mut().unwrap().schedules.clear();
    assert!(build(&cluster).unwrap().is_empty());
    cluster.spec.backup = None;
    assert!(build(&cluster).unwrap().is_empty());
}

#[test]
fn cron_job_names_fit_with_long_cluster_and_schedule_names() {
    let mut cluster = example();
    cluster.metadata.name = Some("a-very-long-cluster-name-for-production".into());
    cluster.spec.backup.as_mut().unwrap().schedules[0].name =
        "nightly-commerce-and-then-some-more-words".into();
    for job in build(&cluster).unwrap() {
        let name = job.metadata.name.unwrap();
        assert!(name.len() <= 52, "{name}");
    }
}
