//! The permissions the operator needs, in one table: the Role in `config/rbac/role.yaml` and
//! the Helm chart's Role are checked against it (tests here and in `e2e/tests/install.rs`),
//! and `e2e/tests/rbac.rs` runs the operator under exactly this Role and fails on any
//! Forbidden. Every row says which code path needs it; a verb no code path needs does not
//! belong here (review rule: a new API call adds its row with its reason, a removed one
//! removes it).

/// One rule of the Role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// API group (`""` is the core group).
    pub group: &'static str,
    pub resource: &'static str,
    /// Sorted.
    pub verbs: &'static [&'static str],
    /// The code path that needs it.
    pub reason: &'static str,
}

const fn rule(
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
    reason: &'static str,
) -> Rule {
    Rule {
        group,
        resource,
        verbs,
        reason,
    }
}

const PS: &str = "planetscale.com";
/// Watched as children (`Controller::owns`, metadata only), applied (`apply::owned`, a
/// server-side apply PATCH, which the API server authorizes as `create` when the object does
/// not exist yet and as `patch` when it does), pruned (`apply::prune`: a metadata LIST, then
/// DELETE).
const CHILD: &[&str] = &["create", "delete", "list", "patch", "watch"];
/// [`CHILD`], and read one by one (GET by name).
const CHILD_READ: &[&str] = &["create", "delete", "get", "list", "patch", "watch"];
/// Watched as the primary kind or as a child, and applied, never deleted.
const APPLIED: &[&str] = &["create", "list", "patch", "watch"];
/// `apply::status`: server-side apply of the status subresource.
const STATUS: &[&str] = &["patch"];

/// Everything the operator does on the API server, in the watched namespace.
pub const RULES: &[Rule] = &[
    rule(
        PS,
        "vitessclusters",
        &["list", "watch"],
        "controller::cluster watches them",
    ),
    rule(
        PS,
        "vitessclusters/status",
        STATUS,
        "controller::cluster writes status",
    ),
    rule(
        PS,
        "vitesscells",
        CHILD,
        "cluster applies and prunes cells; controller::cell watches them",
    ),
    rule(
        PS,
        "vitesscells/status",
        STATUS,
        "controller::cell writes status",
    ),
    rule(
        PS,
        "vitesskeyspaces",
        &["create", "delete", "get", "list", "patch", "watch"],
        "cluster applies and prunes keyspaces, and GETs an orphan's turndown policy (cluster::kept_keyspaces)",
    ),
    rule(
        PS,
        "vitesskeyspaces/status",
        STATUS,
        "controller::keyspace writes status",
    ),
    rule(
        PS,
        "vitessshards",
        CHILD,
        "keyspace applies and prunes shards; controller::shard watches them; \
         controller::backupschedule lists one by name for a vtbackup run",
    ),
    rule(
        PS,
        "vitessshards/status",
        STATUS,
        "controller::shard writes status",
    ),
    rule(
        PS,
        "etcdlockservers",
        APPLIED,
        "cluster applies the global lockserver, cell its own (neither deletes one); \
         controller::etcd, cluster and cell watch them",
    ),
    rule(
        PS,
        "etcdlockservers/status",
        STATUS,
        "controller::etcd writes status",
    ),
    rule(
        PS,
        "vitessbackupstorages",
        CHILD,
        "cluster applies, watches and prunes backup storages",
    ),
    rule(
        PS,
        "vitessbackupstorages/status",
        STATUS,
        "controller::backupstorage writes the backup counts",
    ),
    rule(
        PS,
        "vitessbackups",
        CHILD_READ,
        "controller::backupstorage applies and prunes inventory entries; controller::backup \
         watches requests; controller::shard watches its backups, applies and GETs its \
         first-backup request (controller::backupinit)",
    ),
    rule(
        PS,
        "vitessbackups/status",
        STATUS,
        "controller::backupstorage and controller::backup write status",
    ),
    rule(
        PS,
        "vitessbackupschedules",
        CHILD,
        "cluster applies, watches and prunes one per spec.backup.schedules entry; \
         controller::backupschedule watches them and lists a schedule's peers (scope Cluster)",
    ),
    rule(
        PS,
        "vitessbackupschedules/status",
        STATUS,
        "controller::backupschedule writes what ran and what is next",
    ),
    rule(
        "",
        "pods",
        CHILD_READ,
        "etcd members and tablets: applied, watched; tablets pruned once drained; a shard's \
         vtbackup-init pod: applied and GET (controller::backupinit)",
    ),
    rule(
        "",
        "services",
        CHILD,
        "etcd, vtctld, vtgate and vttablet Services",
    ),
    rule(
        "",
        "persistentvolumeclaims",
        &["create", "list", "patch"],
        "apply::claim: server-side apply; controller::shard lists its tablets' claims for status \
         and controller::shard::volumes patches their storage request to grow them (never \
         deleted)",
    ),
    rule(
        "",
        "secrets",
        &["create", "get", "patch"],
        "controller::topology reads the Secrets of spec.vitessDashboard.clientTLS; \
         controller::backupinit checks that a backup location's credentials Secret has its key; \
         controller::cluster applies vtadmin's three files per cell (apply::dependent: owned by \
         their Deployment, so never listed or deleted by the operator)",
    ),
    rule(
        "apps",
        "deployments",
        CHILD,
        "vtctld, vtgate, vtorc and vtadmin Deployments",
    ),
    rule(
        "batch",
        "cronjobs",
        &["delete", "list"],
        "controller::cluster removes the CronJobs that schedules were before they were \
         VitessBackupSchedules (an upgraded operator's cleanup)",
    ),
    rule(
        "batch",
        "jobs",
        &["create", "delete", "list", "watch"],
        "controller::backupschedule creates a schedule's Jobs, watches (metadata) and lists \
         them, deletes those beyond the history limits or past the timeout",
    ),
    rule("policy", "poddisruptionbudgets", CHILD, "the etcd PDB"),
    rule(
        "autoscaling",
        "horizontalpodautoscalers",
        CHILD,
        "the vtgate HPA",
    ),
    rule(
        "events.k8s.io",
        "events",
        &["create", "patch"],
        "events::Events (kube Recorder: create, then patch the series)",
    ),
    rule(
        "coordination.k8s.io",
        "leases",
        &["create", "get", "update"],
        "leader::Elector (get, create, replace with resourceVersion)",
    ),
];

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::Role;

/// (apiGroup, resource, verb) triples.
pub type Grants = BTreeSet<(String, String, String)>;

/// Every (group, resource, verb) of [`RULES`].
pub fn table() -> Grants {
    RULES
        .iter()
        .flat_map(|r| {
            r.verbs
                .iter()
                .map(|v| (r.group.to_string(), r.resource.to_string(), v.to_string()))
        })
        .collect()
}

/// Every (group, resource, verb) a Role grants.
pub fn grants(role: &Role) -> Grants {
    let mut out = Grants::new();
    for rule in role.rules.iter().flatten() {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_table_is_sorted_and_has_no_wildcards() {
        for rule in RULES {
            assert!(rule.verbs.is_sorted(), "{rule:?}");
            assert!(
                !rule.verbs.contains(&"*") && rule.resource != "*",
                "{rule:?}"
            );
            assert!(!rule.reason.is_empty(), "{rule:?}");
        }
        let keys: BTreeSet<_> = RULES.iter().map(|r| (r.group, r.resource)).collect();
        assert_eq!(keys.len(), RULES.len(), "one row per resource");
    }

    #[test]
    fn config_role_grants_exactly_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rbac/role.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let role: Role = serde_saphyr::from_str(&text).unwrap();
        let granted = grants(&role);
        let needed = table();
        let missing: Vec<_> = needed.difference(&granted).collect();
        let unused: Vec<_> = granted.difference(&needed).collect();
        assert!(
            missing.is_empty() && unused.is_empty(),
            "config/rbac/role.yaml differs from src/rbac.rs RULES\nmissing: {missing:?}\nunused: {unused:?}"
        );
    }
}
