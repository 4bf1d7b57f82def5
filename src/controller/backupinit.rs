//! The first backup of a shard, and what the shard's status says about its backups
//! (DESIGN §8). Decided by a pure function from what the shard looks like; the shard
//! controller gathers the inputs ([`observe`]) and carries the decision out ([`execute`]).
//!
//! - A new shard (no primary) with no complete backup gets a `vtbackup-init` pod that uploads
//!   a backup of the empty database; the first primary is not elected until it has succeeded.
//!   Its tablets wait for that backup (`--wait-for-backup-interval`) and restore from it.
//! - A shard that already serves when backups are configured gets no init pod (vtbackup would
//!   refuse, the shard has serving tablets): once every tablet is ready the shard creates one
//!   VitessBackup request, so the backup request controller asks vtctld `BackupShard` of a
//!   replica exactly once. A failed request is reported, not retried: a new request retries.
//! - The status counts the inventory's backups per location, and `BackupsFresh` compares the
//!   latest complete backup with a location's `maxBackupAge`. vtctld v0.24 does not say which
//!   backups are complete: a location whose recent backups are all of unknown completeness is
//!   `Unknown`, not stale (an alert on `False` must not fire for backups that are fine).
//!
//! Why one file: the decision, its inputs and its execution are one protocol (init pod,
//! request, freshness) read top to bottom; its tests are in `backupinit/tests.rs`.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};

use super::condition::Readiness;
use super::{Context, Error};
use crate::api::backup::VitessBackupStatus;
use crate::api::backupstorage::VitessBackupLocation;
use crate::api::shard::ShardBackupLocationStatus;
use crate::api::{VitessBackup, VitessShard};
use crate::desired::vtbackup::VtbackupInit;
use crate::k8s::applier::Applier;
use crate::vitess::BackupStatus;
use crate::{desired, domain::labels, k8s::apply, k8s::events};

/// Condition: whether the shard has its first backup, and how it gets one.
pub const BACKUP_INITIALIZED: &str = "BackupInitialized";
/// Condition: whether the latest complete backup is younger than `maxBackupAge`.
pub const BACKUPS_FRESH: &str = "BackupsFresh";

/// Where the shard's `vtbackup-init` pod is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitPod {
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed` (empty: not reported yet).
    pub phase: String,
    /// How often vtbackup exited with an error (the pod restarts it in place).
    pub failures: i32,
    /// What vtbackup said last when it failed (the end of its log, which the kubelet keeps as
    /// the container's termination message).
    pub last_error: Option<String>,
    /// The pod runs what the operator would build now (its desired-state hash matches).
    pub current: bool,
    /// Why a container of the pod cannot start (`CreateContainerConfigError: secret
    /// "gcs-auth" not found`, an image that cannot be pulled), if one cannot.
    pub blocked: Option<String>,
    /// When the running vtbackup container started (RFC 3339), while one runs.
    pub running_since: Option<String>,
}

/// Waiting reasons of a container that do not block it: steps on the way, and the back-off
/// between restarts (which `failures` counts, with what vtbackup said).
const NOT_BLOCKED: [&str; 3] = ["ContainerCreating", "PodInitializing", "CrashLoopBackOff"];

/// The longest part of vtbackup's last words a condition or Event repeats.
const LAST_ERROR_LIMIT: usize = 400;

/// Where the shard's own first-backup request is, by its `Complete` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub complete: bool,
    /// The condition's reason and message (empty while the request was not looked at yet).
    pub reason: String,
    pub message: String,
}

/// The inventory's backups of the shard, all locations together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub complete: usize,
    pub incomplete: usize,
    /// Listed by vtctld without saying whether complete.
    pub unknown: usize,
}

/// What [`decide`] looks at.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// The shard has backup locations.
    pub configured: bool,
    /// An init pod would be built (backups and `replication.initializeBackup` not false).
    pub init_wanted: bool,
    /// The primary Vitess records.
    pub primary: Option<String>,
    /// Every tablet the spec wants is ready and no drain runs.
    pub settled: bool,
    pub counts: Counts,
    pub init_pod: Option<InitPod>,
    pub request: Option<Request>,
}

/// What to create (or replace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    Nothing,
    InitPod,
    Request,
    /// Delete the failing init pod, whose spec is outdated (the user fixed the location, say):
    /// the next reconcile makes it again from the spec as it is now.
    ReplaceInitPod,
}

/// What [`decide`] concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub create: Create,
    /// Why the first primary must wait.
    pub hold: Option<String>,
    /// The `BackupInitialized` condition; `None` without backups.
    pub condition: Option<Readiness>,
}

impl Decision {
    fn new(create: Create, hold: Option<String>, condition: Readiness) -> Self {
        Self {
            create,
            hold,
            condition: Some(condition),
        }
    }
}

/// The next step towards the shard's first backup.
pub fn decide(inputs: &Inputs) -> Decision {
    if !inputs.configured {
        return Decision {
            create: Create::Nothing,
            hold: None,
            condition: None,
        };
    }
    if let Some(pod) = &inputs.init_pod {
        return by_init_pod(inputs, pod);
    }
    if inputs.primary.is_none() {
        return before_primary(inputs);
    }
    // The shard serves: vtbackup would refuse; the first backup comes from a replica.
    if let Some(request) = &inputs.request {
        return Decision::new(Create::Nothing, None, by_request(request));
    }
    serving_without_request(inputs)
}

/// `BackupExists`, with the inventory's counts.
fn exists(counts: Counts) -> Readiness {
    Readiness::new(
        true,
        "BackupExists",
        format!(
            "backups in storage: {} complete, {} incomplete, {} of unknown completeness",
            counts.complete, counts.incomplete, counts.unknown
        ),
    )
}

/// A shard with a `vtbackup-init` pod: where that pod is.
fn by_init_pod(inputs: &Inputs, pod: &InitPod) -> Decision {
    let failing = pod.phase == "Failed" || pod.failures > 0 || pod.blocked.is_some();
    if failing && !pod.current && pod.phase != "Succeeded" && inputs.primary.is_none() {
        let why = format!(
            "replacing vtbackup-init pod {}: it fails, and the shard's spec for it changed",
            pod.name
        );
        return Decision::new(
            Create::ReplaceInitPod,
            Some(why.clone()),
            Readiness::new(false, "InitPodReplaced", why),
        );
    }
    match pod.phase.as_str() {
        "Succeeded" => Decision::new(
            Create::Nothing,
            None,
            Readiness::new(
                true,
                "InitialBackupUploaded",
                format!("{} uploaded the shard's first backup", pod.name),
            ),
        ),
        // Once the shard has a primary, the init pod no longer holds anything back.
        _ if inputs.primary.is_some() => {
            Decision::new(Create::Nothing, None, exists(inputs.counts))
        }
        "Failed" => {
            let why = format!(
                "vtbackup-init pod {} failed{}; see `kubectl logs {}`",
                pod.name,
                last_words(pod),
                pod.name
            );
            Decision::new(
                Create::Nothing,
                Some(why.clone()),
                Readiness::new(false, "InitPodFailed", why),
            )
        }
        // A container cannot even start (a missing Secret, an image that is not there).
        _ if pod.blocked.is_some() => {
            let why = format!(
                "vtbackup-init pod {} cannot start: {}; the first primary waits for it (fix \
                 the spec and the operator replaces the pod)",
                pod.name,
                pod.blocked.as_deref().unwrap_or_default()
            );
            Decision::new(
                Create::Nothing,
                Some(why.clone()),
                Readiness::new(false, "InitPodFailing", why),
            )
        }
        // Restarted in place after an error (a wrong bucket, missing credentials, an
        // unreachable store): the shard waits, and says what vtbackup said.
        _ if pod.failures > 0 => {
            let why = format!(
                "vtbackup-init pod {} has failed {} time(s){}; it is retried, and the first \
                 primary waits for it (fix the backup location and the operator replaces the \
                 pod)",
                pod.name,
                pod.failures,
                last_words(pod)
            );
            Decision::new(
                Create::Nothing,
                Some(why.clone()),
                Readiness::new(false, "InitPodFailing", why),
            )
        }
        phase => {
            let why = match &pod.running_since {
                // A time, not a duration: the message stays the same while the pod runs.
                Some(since) => format!(
                    "waiting for vtbackup-init pod {name} to upload the first backup \
                     (vtbackup running since {since}; an empty shard's backup takes a minute \
                     or two: if it does not end, its store or token endpoint may refuse \
                     connections, which the GCS client retries without end; see `kubectl \
                     logs {name} -c {container}`)",
                    name = pod.name,
                    container = desired::vtbackup::CONTAINER,
                ),
                None => format!(
                    "waiting for vtbackup-init pod {} to upload the first backup (phase {})",
                    pod.name,
                    if phase.is_empty() { "unknown" } else { phase }
                ),
            };
            Decision::new(
                Create::Nothing,
                Some(why.clone()),
                Readiness::new(false, "InitPodRunning", why),
            )
        }
    }
}

/// `: <what vtbackup said last>`, or nothing when it said nothing.
fn last_words(pod: &InitPod) -> String {
    pod.last_error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

/// What vtbackup said last, from its container's termination message (the end of its log):
/// the last line that says something, the message alone when the line is a JSON log record,
/// cut to [`LAST_ERROR_LIMIT`] characters.
pub fn last_error_of(message: &str) -> Option<String> {
    let line = message
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty())?;
    let text = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|record| record["msg"].as_str().map(str::to_string))
        .unwrap_or_else(|| line.to_string());
    Some(match text.char_indices().nth(LAST_ERROR_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

/// The init pod as [`decide`] needs it: its phase, vtbackup's failures and last words, and
/// whether it runs the spec the operator would build now (`desired_hash`).
pub fn init_pod_of(pod: &Pod, desired_hash: Option<&str>) -> InitPod {
    let status = pod.status.as_ref();
    let vtbackup = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.iter().find(|c| c.name == desired::vtbackup::CONTAINER));
    let terminated = vtbackup.and_then(|c| {
        let now = c.state.as_ref().and_then(|s| s.terminated.as_ref());
        let before = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        now.filter(|t| t.exit_code != 0)
            .or(before.filter(|t| t.exit_code != 0))
    });
    let running_hash = pod
        .annotations()
        .get(labels::rollout::DESIRED_STATE_HASH)
        .map(String::as_str);
    let blocked = status
        .into_iter()
        .flat_map(|s| {
            let init = s.init_container_statuses.iter().flatten();
            init.chain(s.container_statuses.iter().flatten())
        })
        .find_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref().unwrap_or_default();
            if reason.is_empty() || NOT_BLOCKED.contains(&reason) {
                return None;
            }
            Some(match waiting.message.as_deref() {
                Some(message) if !message.is_empty() => {
                    format!("{}: {reason}: {message}", c.name)
                }
                _ => format!("{}: {reason}", c.name),
            })
        });
    InitPod {
        name: pod.name_any(),
        blocked,
        phase: status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        failures: vtbackup.map_or(0, |c| c.restart_count)
            + i32::from(
                vtbackup
                    .and_then(|c| c.state.as_ref()?.terminated.as_ref())
                    .is_some_and(|t| t.exit_code != 0),
            ),
        last_error: terminated
            .and_then(|t| t.message.as_deref().or(t.reason.as_deref()))
            .and_then(last_error_of),
        current: desired_hash.is_some() && running_hash == desired_hash,
        running_since: vtbackup
            .and_then(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
            .map(|t| t.0.to_string()),
    }
}

/// A new shard (no primary yet) without an init pod.
fn before_primary(inputs: &Inputs) -> Decision {
    if inputs.counts.complete > 0 {
        return Decision::new(Create::Nothing, None, exists(inputs.counts));
    }
    if !inputs.init_wanted {
        return Decision::new(
            Create::Nothing,
            None,
            Readiness::new(
                false,
                "NoBackup",
                "no complete backup and replication.initializeBackup is false: the \
                 tablets wait for a backup to restore from",
            ),
        );
    }
    let why = "waiting for the vtbackup-init pod to upload the first backup".to_string();
    Decision::new(
        Create::InitPod,
        Some(why.clone()),
        Readiness::new(false, "InitPodRunning", why),
    )
}

/// A serving shard's own first-backup request: where it is.
fn by_request(request: &Request) -> Readiness {
    match (request.complete, request.reason.as_str()) {
        (true, _) => Readiness::new(
            true,
            "BackupTaken",
            format!("VitessBackup {} took the first backup", request.name),
        ),
        (false, "BackupFailed" | "Interrupted") => Readiness::new(
            false,
            "InitialBackupFailed",
            format!(
                "VitessBackup {} failed: {}; it is not retried: create a VitessBackup \
                 with spec.keyspace and spec.shard to try again",
                request.name, request.message
            ),
        ),
        _ => Readiness::new(
            false,
            "BackupRequested",
            format!(
                "VitessBackup {} asks vtctld for a backup of a replica",
                request.name
            ),
        ),
    }
}

/// A serving shard that has not asked for a backup: whether it should now.
fn serving_without_request(inputs: &Inputs) -> Decision {
    let counts = inputs.counts;
    if counts.complete + counts.incomplete + counts.unknown > 0 {
        return Decision::new(Create::Nothing, None, exists(counts));
    }
    if !inputs.settled {
        return Decision::new(
            Create::Nothing,
            None,
            Readiness::new(
                false,
                "Waiting",
                "the shard serves without a backup; its first backup is taken from a replica \
                 once every tablet is ready",
            ),
        );
    }
    Decision::new(
        Create::Request,
        None,
        Readiness::new(
            false,
            "BackupRequested",
            "asking vtctld for a backup of a replica",
        ),
    )
}

/// Backups of the shard per configured location, from the inventory's entries.
pub fn location_status(
    locations: &[VitessBackupLocation],
    backups: &[VitessBackup],
) -> Vec<ShardBackupLocationStatus> {
    locations
        .iter()
        .map(|location| {
            let here = backups.iter().filter(|b| {
                b.labels().get(labels::BACKUP_LOCATION).map(String::as_str)
                    == Some(location.name.as_str())
            });
            let mut status = ShardBackupLocationStatus {
                name: (!location.name.is_empty()).then(|| location.name.clone()),
                ..ShardBackupLocationStatus::default()
            };
            for backup in here {
                let Some(s) = &backup.status else {
                    status.incomplete_backups += 1;
                    continue;
                };
                let time = finished(s);
                later(&mut status.latest_backup_time, time);
                if s.complete {
                    status.complete_backups += 1;
                    later(&mut status.latest_complete_backup_time, time);
                } else if s.vtctld_status.as_deref() == Some(BackupStatus::Unknown.name()) {
                    status.unknown_backups += 1;
                } else {
                    status.incomplete_backups += 1;
                }
            }
            status
        })
        .collect()
}

/// `latest` moved to `time` when that is later.
fn later(latest: &mut Option<Time>, time: Option<&Time>) {
    if time.map(|t| t.0) > latest.as_ref().map(|t| t.0) {
        *latest = time.cloned();
    }
}

/// When a backup ended (its start when the end is unknown).
fn finished(status: &VitessBackupStatus) -> Option<&Time> {
    status.finished_time.as_ref().or(status.start_time.as_ref())
}

/// Totals of [`location_status`].
pub fn counts(locations: &[ShardBackupLocationStatus]) -> Counts {
    locations.iter().fold(Counts::default(), |c, l| Counts {
        complete: c.complete + usize::try_from(l.complete_backups).unwrap_or(0),
        incomplete: c.incomplete + usize::try_from(l.incomplete_backups).unwrap_or(0),
        unknown: c.unknown + usize::try_from(l.unknown_backups).unwrap_or(0),
    })
}

/// `BackupsFresh` against the locations' `maxBackupAge`; `None` when no location sets one.
/// False when a location's latest complete backup is older than its maximum (or it has none)
/// and no recent backup could be complete; Unknown when the only recent backups are ones whose
/// completeness vtctld does not report; True otherwise.
pub fn freshness(
    locations: &[VitessBackupLocation],
    statuses: &[ShardBackupLocationStatus],
    now: SystemTime,
) -> Option<Readiness> {
    let mut stale = Vec::new();
    let mut unknown = Vec::new();
    let mut checked = 0;
    for (location, status) in locations.iter().zip(statuses) {
        let Some(max) = location.max_backup_age.as_deref() else {
            continue;
        };
        checked += 1;
        let label = if location.name.is_empty() {
            "the unnamed location".to_string()
        } else {
            format!("location {}", location.name)
        };
        let Some(max_age) = parse_duration(max) else {
            stale.push(format!("{label}: maxBackupAge {max:?} is not a duration"));
            continue;
        };
        let recent = |time: &Time| {
            now.duration_since(SystemTime::from(time.0))
                .unwrap_or_default()
                <= max_age
        };
        // Messages name times, not ages: they must not change (and be written) on every
        // reconcile.
        let why = match &status.latest_complete_backup_time {
            Some(latest) if recent(latest) => continue,
            Some(latest) => format!(
                "the latest complete backup finished at {}, more than {max} ago",
                latest.0
            ),
            None => "no complete backup".to_string(),
        };
        match &status.latest_backup_time {
            Some(latest) if status.unknown_backups > 0 && recent(latest) => unknown.push(format!(
                "{label}: {why}, but vtctld does not report whether the backups are complete \
                 (the latest one is from {}, within {max})",
                latest.0
            )),
            _ => stale.push(format!("{label}: {why}")),
        }
    }
    (checked > 0).then(|| {
        if !stale.is_empty() {
            Readiness::new(false, "Stale", stale.join("; "))
        } else if !unknown.is_empty() {
            Readiness::unknown("CompletenessUnknown", unknown.join("; "))
        } else {
            Readiness::new(
                true,
                "Fresh",
                "every location's latest complete backup is within its maxBackupAge",
            )
        }
    })
}

/// `1h30m`, `26h`, `90s`: hours, minutes and seconds (the `maxBackupAge` pattern).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    (number.is_empty() && !text.is_empty()).then_some(Duration::from_secs(total))
}

/// What the shard controller read for [`decide`] and the status.
pub struct Observed {
    pub backups: Vec<VitessBackup>,
    pub init_pod: Option<InitPod>,
    pub request: Option<Request>,
}

/// Reads the shard's inventory entries and, only while they can matter (no primary, or no
/// backup yet), its init pod and first-backup request.
pub async fn observe(
    ctx: &Context,
    shard: &VitessShard,
    init: Option<&VtbackupInit>,
    primary: Option<&str>,
) -> Result<Observed, Error> {
    let client = &ctx.client;
    let namespace = shard.namespace().unwrap_or_default();
    let own = shard.labels();
    let pairs: Vec<(&str, &str)> = [labels::CLUSTER, labels::KEYSPACE, labels::SHARD]
        .iter()
        .filter_map(|k| own.get(*k).map(|v| (*k, v.as_str())))
        .collect();
    let selector = apply::selector(&pairs, &[labels::BACKUP_LOCATION]);
    let backups: Vec<VitessBackup> =
        apply::labelled(client, &namespace, &selector, &super::describe(shard)).await?;
    let empty = backups.is_empty();
    let init_pod = match init {
        Some(init) if primary.is_none() || empty => {
            let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            let name = init.pod.name_any();
            let desired_hash = init
                .pod
                .annotations()
                .get(labels::rollout::DESIRED_STATE_HASH)
                .map(String::as_str);
            let mut seen = get(&pods, &name)
                .await?
                .map(|pod| init_pod_of(&pod, desired_hash));
            // A pod whose Secret volume cannot be mounted stays "ContainerCreating": only its
            // Events say why. Look for the Secret itself while the pod has not started.
            if let Some(pod) = seen
                .as_mut()
                .filter(|p| p.phase == "Pending" && p.blocked.is_none())
            {
                pod.blocked = missing_secret(ctx, shard).await?;
            }
            seen
        }
        _ => None,
    };
    let request = if primary.is_some() && empty {
        let requests: Api<VitessBackup> = Api::namespaced(client.clone(), &namespace);
        let name = desired::vtbackup::initial_backup_request(shard)?.name_any();
        get(&requests, &name).await?.map(|r| {
            let status = r.status.unwrap_or_default();
            let condition = status
                .conditions
                .iter()
                .find(|c| c.type_ == super::backup::COMPLETE);
            Request {
                name,
                complete: status.complete,
                reason: condition.map(|c| c.reason.clone()).unwrap_or_default(),
                message: condition.map(|c| c.message.clone()).unwrap_or_default(),
            }
        })
    } else {
        None
    };
    Ok(Observed {
        backups,
        init_pod,
        request,
    })
}

/// What is wrong with the Secret the init pod's backup location reads, if anything: it does
/// not exist, or lacks the key the location names.
pub async fn missing_secret(ctx: &Context, shard: &VitessShard) -> Result<Option<String>, Error> {
    let locations = shard.spec.backup_locations.as_deref().unwrap_or_default();
    let first_pool = shard.spec.template.tablet_pools.first();
    let name = first_pool.and_then(|p| p.backup_location_name.as_deref());
    let Some((source, field)) = locations
        .iter()
        .find(|l| l.name == name.unwrap_or_default())
        .and_then(desired::backup::auth_secret)
    else {
        return Ok(None);
    };
    let namespace = shard.namespace().unwrap_or_default();
    let secret_name = source.name.clone().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    Ok(match get(&secrets, &secret_name).await? {
        None => Some(format!(
            "Secret {namespace}/{secret_name} ({field}) does not exist"
        )),
        Some(secret) => {
            // `stringData` is write-only: the API server keeps it in `data`.
            let has = secret
                .data
                .as_ref()
                .is_some_and(|d| d.contains_key(&source.key));
            (!has).then(|| {
                format!(
                    "Secret {namespace}/{secret_name} ({field}) has no key {:?}",
                    source.key
                )
            })
        }
    })
}

async fn get<K>(api: &Api<K>, name: &str) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(|source| Error::Get {
        what: format!("{} {name}", K::kind(&())),
        source: Box::new(source),
    })
}

/// Creates what `decision` asks for.
pub async fn execute(
    ctx: &Context,
    shard: &VitessShard,
    init: Option<VtbackupInit>,
    decision: &Decision,
) -> Result<(), Error> {
    let applier = Applier::new(&ctx.client, &ctx.events, shard);
    match (decision.create, init) {
        (Create::InitPod, Some(init)) => {
            if let Some(pvc) = init.pvc {
                applier.claim(pvc).await?;
            }
            let pod = applier.owned(init.pod).await?;
            ctx.events
                .publish(
                    shard,
                    EventType::Normal,
                    events::BACKUP_INIT_STARTED,
                    &format!(
                        "created {} to upload the shard's first backup; the first primary \
                         is elected once it has succeeded",
                        pod.name_any()
                    ),
                )
                .await;
        }
        (Create::ReplaceInitPod, Some(init)) => {
            let name = init.pod.name_any();
            apply::delete_meta::<Pod>(&ctx.client, &init.pod.metadata).await?;
            ctx.events
                .publish(
                    shard,
                    EventType::Normal,
                    events::BACKUP_INIT_REPLACED,
                    &format!(
                        "deleted the failing {name}: the shard's spec for it changed; it is \
                         made again from the spec as it is now"
                    ),
                )
                .await;
        }
        (Create::Request, _) => {
            let request = desired::vtbackup::initial_backup_request(shard)?;
            // The inventory may not have listed the shard yet (a new operator, a new
            // location): ask vtctld itself before asking for a backup nobody needs.
            let (keyspace, name) = (
                request.spec.keyspace.clone().unwrap_or_default(),
                request.spec.shard.clone().unwrap_or_default(),
            );
            let listed: Result<_, super::VtctldError> = async {
                Ok(ctx
                    .vtctld(shard)
                    .await?
                    .backups(&keyspace, &name, 1)
                    .await?)
            }
            .await;
            match listed {
                Ok(found) if found.is_empty() => {}
                Ok(_) => {
                    tracing::info!(%keyspace, shard = %name, "vtctld lists a backup the inventory has not yet: no initial backup needed");
                    return Ok(());
                }
                Err(why) => {
                    tracing::warn!(%keyspace, shard = %name, %why, "cannot ask vtctld for backups; the initial backup waits");
                    return Ok(());
                }
            }
            let request = applier.owned(request).await?;
            ctx.events
                .publish(
                    shard,
                    EventType::Normal,
                    events::INITIAL_BACKUP_REQUESTED,
                    &format!(
                        "the shard serves without a backup: VitessBackup {} asks vtctld \
                         BackupShard {}/{} of a replica, once",
                        request.name_any(),
                        request.spec.keyspace.as_deref().unwrap_or_default(),
                        request.spec.shard.as_deref().unwrap_or_default(),
                    ),
                )
                .await;
        }
        _ => {}
    }
    publish_failure(ctx, shard, decision).await;
    Ok(())
}

/// A Warning Event each time the init pod's failure says something new (another failure, or
/// other words): not on every reconcile, which would be a write for nothing.
async fn publish_failure(ctx: &Context, shard: &VitessShard, decision: &Decision) {
    let Some(condition) = &decision.condition else {
        return;
    };
    if !["InitPodFailing", "InitPodFailed"].contains(&condition.reason.as_str()) {
        return;
    }
    let said = shard
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == BACKUP_INITIALIZED))
        .map(|c| c.message.as_str());
    if said != Some(condition.message.as_str()) {
        ctx.events
            .publish(
                shard,
                EventType::Warning,
                events::BACKUP_INIT_FAILING,
                &condition.message,
            )
            .await;
    }
}

#[cfg(test)]
mod tests;
