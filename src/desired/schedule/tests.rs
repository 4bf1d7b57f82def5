//! The tests of [`super`].

use super::*;
use crate::api::cluster::BackupMethod;
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

/// The schedules of `cluster`, as the API server would hand them to their controller.
fn schedules(cluster: &VitessCluster) -> Vec<VitessBackupSchedule> {
    let mut out = build(cluster).unwrap();
    for (i, s) in out.iter_mut().enumerate() {
        s.metadata.uid = Some(format!("uid-{i}"));
    }
    out
}

fn due() -> Timestamp {
    "2026-12-07T02:30:00Z".parse().unwrap()
}

/// Every Job of `schedule`'s shards due at [`due`].
fn jobs(cluster: &VitessCluster, schedule: &VitessBackupSchedule) -> Vec<Job> {
    let excluded = cluster
        .spec
        .backup
        .iter()
        .flat_map(|b| b.schedules.iter())
        .flat_map(keyspace_scoped)
        .collect();
    targets(cluster, &schedule.spec.template, &excluded)
        .unwrap()
        .iter()
        .map(|t| {
            job(cluster, schedule, t, due(), Method::Vtctldclient)
                .unwrap()
                .unwrap()
        })
        .collect()
}

fn pod_of(job: &Job) -> PodSpec {
    job.spec.clone().unwrap().template.spec.unwrap()
}

/// The command line of the Job's one container.
fn line(job: &Job) -> Vec<String> {
    let pod = pod_of(job);
    assert!(pod.init_containers.is_none());
    assert_eq!(pod.containers.len(), 1);
    let mut line = pod.containers[0].command.clone().unwrap();
    line.extend(pod.containers[0].args.clone().unwrap());
    line
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

const SERVER: &str = "--server=example-vtctld-625ee430.prod.svc:15999";

#[test]
fn one_schedule_object_per_schedule_with_the_go_operators_name() {
    let cluster = example();
    let built = build(&cluster).unwrap();
    assert_eq!(built.len(), 2);
    let nightly = &built[0];
    assert_eq!(
        nightly.metadata.name.as_deref(),
        Some("example-vbsc-nightly-commerce-31bc65b7")
    );
    assert_eq!(
        nightly.metadata.name.as_deref(),
        Some(names::cluster::backup_schedule("example", "nightly-commerce").as_str())
    );
    assert_eq!(nightly.metadata.namespace.as_deref(), Some("prod"));
    let want = labels::set(&[
        ("planetscale.com/component", "vtbackup-schedule"),
        ("planetscale.com/cluster", "example"),
    ]);
    assert_eq!(nightly.metadata.labels.as_ref(), Some(&want));
    assert_eq!(nightly.spec.cluster, "example");
    // The image vtctld runs (the operator's default here), which has vtctldclient.
    assert_eq!(nightly.spec.image.as_deref(), Some(defaults::VITESS_IMAGE));
    assert_eq!(
        nightly.spec.template,
        cluster.spec.backup.as_ref().unwrap().schedules[0]
    );
}

#[test]
fn a_job_per_shard_and_due_time_runs_backup_shard_once() {
    let cluster = example();
    let schedules = schedules(&cluster);
    let nightly = jobs(&cluster, &schedules[0]);
    assert_eq!(nightly.len(), 1);
    let job = &nightly[0];
    let schedule_name = schedules[0].metadata.name.clone().unwrap();
    assert_eq!(
        job.metadata.name.as_deref(),
        Some(
            names::cluster::backup_job(&schedule_name, "commerce", "x-x", due().as_second())
                .as_str()
        )
    );
    let want = labels::set(&[
        ("planetscale.com/component", "vtbackup-schedule"),
        ("planetscale.com/cluster", "example"),
        ("planetscale.com/backup-schedule", &schedule_name),
        ("planetscale.com/keyspace", "commerce"),
        ("planetscale.com/shard", "x-x"),
        ("planetscale.com/backup-method", "vtctldclient"),
    ]);
    assert_eq!(job.metadata.labels.as_ref(), Some(&want));
    let annotations = job.metadata.annotations.clone().unwrap();
    assert_eq!(annotations[SCHEDULED_AT], "2026-12-07T02:30:00Z");
    let owner = &job.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        (
            "VitessBackupSchedule",
            schedule_name.as_str(),
            "uid-0",
            Some(true)
        )
    );
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(spec.active_deadline_seconds, Some(30 * 60));
    assert_eq!(spec.backoff_limit, Some(BACKOFF_LIMIT));
    let template = spec.template.metadata.as_ref().unwrap();
    assert_eq!(template.labels.as_ref(), Some(&want));
    assert_eq!(
        line(job),
        strings(&["/vt/bin/vtctldclient", SERVER, "BackupShard", "commerce/-"])
    );
    let pod = pod_of(job);
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let container = &pod.containers[0];
    assert_eq!(container.name, "vtctldclient");
    assert_eq!(container.image.as_deref(), Some(defaults::VITESS_IMAGE));
    let resources = container.resources.as_ref().unwrap();
    assert_eq!(
        resources.requests.as_ref().unwrap()["memory"].0,
        "512Mi".to_string()
    );
    assert!(pod.volumes.is_none() && container.volume_mounts.is_none());

    // Two shards: a Job each, with the default timeout of 10 minutes.
    let customer = jobs(&cluster, &schedules[1]);
    assert_eq!(
        customer.iter().map(line).collect::<Vec<_>>(),
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
    assert_eq!(
        customer[0].spec.as_ref().unwrap().active_deadline_seconds,
        Some(600)
    );
    assert_ne!(customer[0].metadata.name, customer[1].metadata.name);

    // A schedule's own image wins over the cluster's.
    let mut own = schedules[0].clone();
    own.spec.image = Some("registry.example/vitess:v24".into());
    let target = &targets(&cluster, &own.spec.template, &BTreeSet::new()).unwrap()[0];
    let own_job = super::job(&cluster, &own, target, due(), Method::Vtctldclient)
        .unwrap()
        .unwrap();
    assert_eq!(
        pod_of(&own_job).containers[0].image.as_deref(),
        Some("registry.example/vitess:v24")
    );
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
    let schedules = schedules(&cluster);
    // customer has a schedule of its own, so the cluster-wide one leaves it out; shards of
    // scopes Keyspace and Cluster are named `<strategy>-<keyspace>-<shard>` (the Go
    // operator's status keys).
    let excluded = keyspace_scoped(&schedules[1].spec.template);
    let got: Vec<(String, String)> = targets(&cluster, &schedules[0].spec.template, &excluded)
        .unwrap()
        .into_iter()
        .map(|t| (format!("{}/{}", t.keyspace, t.shard), t.strategy))
        .collect();
    assert_eq!(
        got,
        [("commerce/-".to_string(), "all-commerce-x-x".to_string())]
    );
    let suspended = VitessBackupScheduleTemplate {
        suspend: Some(true),
        ..schedules[1].spec.template.clone()
    };
    assert!(
        keyspace_scoped(&suspended).is_empty(),
        "a suspended schedule excludes nothing"
    );

    // Unset tolerations: vtctld's; an empty list clears them.
    let daily = jobs(&cluster, &schedules[0]);
    let tolerations = pod_of(&daily[0]).tolerations.unwrap();
    assert_eq!(tolerations[0].key.as_deref(), Some("dedicated"));
    let two_hourly = jobs(&cluster, &schedules[1]);
    assert_eq!(two_hourly.len(), 2);
    assert_eq!(pod_of(&two_hourly[0]).tolerations, Some(vec![]));
}

#[test]
fn scopes_expand_to_shards_each_backed_up_once() {
    let cluster = cluster(SCOPES);
    let schedule = &cluster.spec.backup.as_ref().unwrap().schedules[0];
    let got: Vec<(String, String)> = targets(&cluster, schedule, &BTreeSet::new())
        .unwrap()
        .into_iter()
        .map(|t| (format!("{}/{}", t.keyspace, t.shard), t.strategy))
        .collect();
    let want = [
        ("customer/-80", "customer-first-customer-x-80"),
        ("customer/80-", "customer-first-customer-80-x"),
        ("commerce/-", "the-rest-commerce-x-x"),
    ];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())));
}

#[test]
fn tls_flags_name_mounted_files_and_schedule_settings_pass_through() {
    let cluster = cluster(SCOPES);
    let schedules = schedules(&cluster);
    let jobs: Vec<Job> = targets(&cluster, &schedules[0].spec.template, &BTreeSet::new())
        .unwrap()
        .iter()
        .map(|t| {
            job(&cluster, &schedules[0], t, due(), Method::Vtctldclient)
                .unwrap()
                .unwrap()
        })
        .collect();
    let spec = jobs[0].spec.as_ref().unwrap();
    // jobTimeoutMinute 0: the default.
    assert_eq!(spec.active_deadline_seconds, Some(600));
    let pod_meta = spec.template.metadata.as_ref().unwrap();
    assert_eq!(
        pod_meta.annotations.as_ref().unwrap().get("team"),
        Some(&"dba".to_string())
    );
    let pod = pod_of(&jobs[0]);
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
        jobs.iter().map(line).collect::<Vec<_>>(),
        [
            with(&flags, "customer/-80"),
            with(&flags, "customer/80-"),
            with(&[], "commerce/-"),
        ]
    );

    // Each file is its Secret's one key, mounted read-only.
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
    let mounts = pod.containers[0].volume_mounts.clone().unwrap();
    assert_eq!(mounts.len(), 3);
    assert!(mounts.iter().all(|m| m.read_only == Some(true)));
    // No secret content anywhere in the pod spec, only paths.
    let text = serde_json::to_string(&pod).unwrap();
    assert!(!text.contains("BEGIN"));
}

#[test]
fn removing_a_schedule_leaves_the_other_as_it_was() {
    // The controller prunes the owned, labelled schedules whose names are not built any
    // more: the removed schedule's, and only it.
    let before = build(&example()).unwrap();
    let mut cluster = example();
    cluster.spec.backup.as_mut().unwrap().schedules.remove(0);
    let after = build(&cluster).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].metadata, before[1].metadata);
    assert_eq!(after[0].spec, before[1].spec);
}

#[test]
fn no_backup_or_no_schedules_make_no_schedule_objects() {
    let mut cluster = example();
    cluster.spec.backup.as_mut().unwrap().schedules.clear();
    assert!(build(&cluster).unwrap().is_empty());
    cluster.spec.backup = None;
    assert!(build(&cluster).unwrap().is_empty());
}

#[test]
fn a_vtbackup_job_runs_the_shards_vtbackup_on_a_volume_of_its_own() {
    let mut cluster = example();
    cluster.spec.backup.as_mut().unwrap().schedules[0].backup_method = Some(BackupMethod::Vtbackup);
    let schedules = schedules(&cluster);
    let children = super::children(&cluster).unwrap();
    let shard = keyspace::shards(&children.keyspaces[0]).unwrap().remove(0);
    let target = &targets(&cluster, &schedules[0].spec.template, &BTreeSet::new()).unwrap()[0];
    let job = job(
        &cluster,
        &schedules[0],
        target,
        due(),
        Method::Vtbackup(&shard),
    )
    .unwrap()
    .expect("the shard has a backup location");
    assert_eq!(
        job.metadata.labels.as_ref().unwrap()["planetscale.com/backup-method"],
        "vtbackup"
    );
    let pod = pod_of(&job);
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let vtbackup = pod
        .containers
        .iter()
        .find(|c| c.name == "vtbackup")
        .expect("a vtbackup container");
    let args = vtbackup.args.clone().unwrap();
    // The latest backup restored, caught up, uploaded: not an empty first backup.
    assert!(
        args.contains(&"--initial-backup=false".to_string()),
        "{args:?}"
    );
    assert!(args.contains(&"--init-shard=-".to_string()), "{args:?}");
    // Its data on a claim made for the pod from the pool's template, gone with it.
    let data = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "vtdataroot")
        .expect("a data volume");
    let claim = data
        .ephemeral
        .as_ref()
        .and_then(|e| e.volume_claim_template.as_ref())
        .expect("an ephemeral claim");
    assert_eq!(
        claim
            .spec
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap()["storage"]
            .0,
        "10Gi"
    );
    // The schedule's annotations and due time on the pod too; no hash of an init pod.
    let annotations = job
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(annotations[SCHEDULED_AT], "2026-12-07T02:30:00Z");
    assert!(!annotations.contains_key(labels::rollout::DESIRED_STATE_HASH));
    // A shard without backups has no vtbackup to run.
    let mut bare = shard.clone();
    bare.spec.backup_locations = None;
    assert!(
        super::job(
            &cluster,
            &schedules[0],
            target,
            due(),
            Method::Vtbackup(&bare)
        )
        .unwrap()
        .is_none()
    );
}
