//! Deterministic child-object names and tablet UIDs, bit-for-bit those of the Go operator.
//!
//! A name is its parts joined by `-`, then `-` and the first 8 hex digits of an MD5 over the
//! original parts (each followed by a NUL byte). Names must match exactly: a cluster the Go
//! operator made is adopted only if we compute the same names, and a different name for a tablet
//! would mean a new pod and a new volume.

use md5::{Digest, Md5};

/// Length of the hash suffix, in hex digits.
const HASH_LEN: usize = 8;
/// Marks a name whose readable part was truncated to make room for the hash.
const TRUNCATION_MARK: &str = "---";

/// Which characters and length Kubernetes accepts for the kind of object being named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Constraints {
    /// Longest name allowed, hash suffix included.
    pub max_len: usize,
    /// Whether the name must start with a letter (Services) or may start with a digit.
    pub letter_first: bool,
}

/// Most objects: DNS subdomain names.
pub const DEFAULT: Constraints = Constraints {
    max_len: 253,
    letter_first: false,
};

/// Services: DNS labels that start with a letter.
pub const SERVICE: Constraints = Constraints {
    max_len: 63,
    letter_first: true,
};

/// The 8-hex-digit hash of the parts, as used in every generated name.
pub fn hash(parts: &[&str]) -> String {
    let mut md5 = Md5::new();
    for part in parts {
        md5.update(part.as_bytes());
        md5.update([0u8]);
    }
    let digest = md5.finalize();
    let mut hex = String::with_capacity(HASH_LEN);
    for byte in digest.iter().take(HASH_LEN / 2) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Joins the parts into a name valid for most objects (DNS subdomain, 253 characters).
pub fn join(parts: &[&str]) -> String {
    join_with(DEFAULT, parts)
}

/// Joins the parts into a name valid for a Service (DNS label, 63 characters).
pub fn join_service(parts: &[&str]) -> String {
    join_with(SERVICE, parts)
}

/// Joins the parts under the given constraints, keeping the hash of the untransformed parts so
/// two different inputs never meet in one name even after lower-casing or truncation.
pub fn join_with(constraints: Constraints, parts: &[&str]) -> String {
    if parts.is_empty() {
        return String::new();
    }
    let suffix = hash(parts);
    let mut readable = parts
        .iter()
        .map(|part| part.chars().map(safe_char).collect::<String>())
        .collect::<Vec<_>>()
        .join("-");
    let first_ok = readable.chars().next().is_some_and(|c| {
        c.is_ascii_lowercase() || (!constraints.letter_first && c.is_ascii_digit())
    });
    if !first_ok {
        readable.insert(0, 'x');
    }
    let predicted = readable.len() + 1 + HASH_LEN;
    if predicted <= constraints.max_len {
        return format!("{readable}-{suffix}");
    }
    // Cut enough that the readable part, the three-dash mark and the hash fit exactly.
    let keep = readable.len() - (predicted - constraints.max_len + 2);
    readable.truncate(keep);
    format!("{readable}{TRUNCATION_MARK}{suffix}")
}

/// Lower-case letters, digits and `-` are kept; upper case is lowered; anything else is `-`.
fn safe_char(c: char) -> char {
    match c {
        'a'..='z' | '0'..='9' | '-' => c,
        'A'..='Z' => c.to_ascii_lowercase(),
        _ => '-',
    }
}

/// A tablet's UID: the first 4 bytes, big-endian, of an MD5 over
/// `"{cell} {keyspace} {keyRange} {poolType} {index}\n"` (key range in Vitess form, index from 1).
pub fn tablet_uid(cell: &str, keyspace: &str, key_range: &str, pool_type: &str, index: u32) -> u32 {
    let line = format!("{cell} {keyspace} {key_range} {pool_type} {index}\n");
    let digest = Md5::digest(line.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A tablet alias as Vitess writes it: `{cell}-{uid}`, the UID zero-padded to 10 digits
/// (Vitess' `%010d`), which is what pod names and `--tablet-path` are made of.
pub fn tablet_alias(cell: &str, uid: u32) -> String {
    format!("{cell}-{uid:010}")
}

/// Names of the children of a VitessCluster; one function per kind of child so callers never
/// assemble parts by hand.
pub mod cluster {
    use super::{join, join_service};

    /// The VitessCell `cell` of the cluster.
    pub fn cell(cluster: &str, cell: &str) -> String {
        join(&[cluster, cell])
    }
    /// The VitessKeyspace `keyspace` of the cluster.
    pub fn keyspace(cluster: &str, keyspace: &str) -> String {
        join(&[cluster, keyspace])
    }
    /// The VitessShard of `keyspace` for the key range whose safe name is `shard_safe`.
    pub fn shard(cluster: &str, keyspace: &str, shard_safe: &str) -> String {
        join(&[cluster, keyspace, shard_safe])
    }
    /// The global EtcdLockserver of the cluster.
    pub fn global_etcd(cluster: &str) -> String {
        join(&[cluster, "etcd"])
    }
    /// The EtcdLockserver of a cell's own lockserver (the Go operator's name).
    pub fn local_etcd(cluster: &str, cell: &str) -> String {
        join(&[cluster, cell, "etcd"])
    }
    /// The VitessBackup of one backup in storage, as the Go operator names it: the location
    /// (left out when unnamed), keyspace, shard safe name, the backup's start time as
    /// `YYYYMMDD-HHMMSS` (UTC) and the hex UID of the tablet that took it.
    pub fn backup(
        cluster: &str,
        location: &str,
        keyspace: &str,
        shard_safe: &str,
        timestamp: &str,
        tablet_uid: u32,
    ) -> String {
        let uid = format!("{tablet_uid:x}");
        if location.is_empty() {
            join(&[cluster, keyspace, shard_safe, timestamp, &uid])
        } else {
            join(&[cluster, location, keyspace, shard_safe, timestamp, &uid])
        }
    }
    /// The VitessBackupStorage of a backup location (`""` for the unnamed one).
    pub fn backup_storage(cluster: &str, location: &str) -> String {
        if location.is_empty() {
            join(&[cluster])
        } else {
            join(&[cluster, location])
        }
    }
    /// The vtctld Deployment of a cell.
    pub fn vtctld_deployment(cluster: &str, cell: &str) -> String {
        join(&[cluster, cell, "vtctld"])
    }
    /// The vtgate Deployment of a cell.
    pub fn vtgate_deployment(cluster: &str, cell: &str) -> String {
        join(&[cluster, cell, "vtgate"])
    }
    /// The cluster-wide vtctld Service.
    pub fn vtctld_service(cluster: &str) -> String {
        join_service(&[cluster, "vtctld"])
    }
    /// The vttablet Pod (and its PVC) of a tablet.
    pub fn vttablet_pod(cluster: &str, alias: &str) -> String {
        join(&[cluster, "vttablet", alias])
    }
    /// The VitessBackupSchedule of backup schedule `schedule` (the Go operator's name).
    pub fn backup_schedule(cluster: &str, schedule: &str) -> String {
        join(&[cluster, "vbsc", schedule])
    }
    /// The Job of VitessBackupSchedule `schedule` that backs up one shard (safe form) due at
    /// `unix` seconds (the Go operator's name: a DNS label, as a Job's name must fit one).
    pub fn backup_job(schedule: &str, keyspace: &str, shard_safe: &str, unix: i64) -> String {
        join_service(&[schedule, keyspace, shard_safe, &unix.to_string()])
    }
    /// The pod that takes a new shard's first backup.
    pub fn vtbackup_init_pod(cluster: &str, keyspace: &str, shard_safe: &str) -> String {
        join(&[cluster, keyspace, shard_safe, "vtbackup", "init"])
    }
    /// The vtorc Deployment of a shard in one cell.
    pub fn vtorc_deployment(cluster: &str, keyspace: &str, shard_safe: &str, cell: &str) -> String {
        join(&[cluster, keyspace, shard_safe, cell, "vtorc"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_vectors() {
        assert_eq!(cluster::global_etcd("example"), "example-etcd-faf13de3");
        assert_eq!(cluster::cell("example", "zone1"), "example-zone1-5abb61ae");
        assert_eq!(
            cluster::keyspace("example", "commerce"),
            "example-commerce-fb9b866a"
        );
        assert_eq!(
            cluster::shard("example", "commerce", "x-x"),
            "example-commerce-x-x-0f5afee6"
        );
        assert_eq!(
            cluster::vtctld_deployment("example", "zone1"),
            "example-zone1-vtctld-1d4dcad0"
        );
        assert_eq!(
            cluster::vtgate_deployment("example", "zone1"),
            "example-zone1-vtgate-bc6cde92"
        );
        assert_eq!(
            cluster::vtbackup_init_pod("example", "commerce", "x-x"),
            "example-commerce-x-x-vtbackup-init-c6db73c9"
        );
        assert_eq!(cluster::backup_storage("example", ""), "example-90089e05");
        // The Go operator's VitessBackupSchedule names, as the Vitess docs show its pods.
        assert_eq!(
            cluster::backup_schedule("example", "every-minute-commerce"),
            "example-vbsc-every-minute-commerce-ac6ff735"
        );
        assert_eq!(
            cluster::backup_schedule("example", "every-minute-customer"),
            "example-vbsc-every-minute-customer-8aaaa771"
        );
    }

    #[test]
    fn backup_job_names_fit_a_label() {
        let schedule = cluster::backup_schedule(&"c".repeat(40), "nightly");
        let name = cluster::backup_job(&schedule, "commerce", "x-80", 1_796_688_000);
        assert_eq!(name.len(), 63);
        assert!(name.ends_with(&format!(
            "---{}",
            hash(&[&schedule, "commerce", "x-80", "1796688000"])
        )));
    }

    #[test]
    fn tablet_vectors() {
        assert_eq!(
            tablet_uid("zone1", "commerce", "-", "replica", 1),
            2548885007
        );
        assert_eq!(
            tablet_uid("zone1", "commerce", "-", "replica", 2),
            2469782763
        );
        let alias = tablet_alias("zone1", 2469782763);
        assert_eq!(alias, "zone1-2469782763");
        // Small UIDs keep ten digits, as Vitess prints them.
        assert_eq!(tablet_alias("zone1", 42), "zone1-0000000042");
        assert_eq!(
            cluster::vttablet_pod("example", &alias),
            "example-vttablet-zone1-2469782763-bfadd780"
        );
    }

    #[test]
    fn hash_is_over_original_parts() {
        // Same readable text, different split: different hash.
        assert_ne!(join(&["a-b", "c"]), join(&["a", "b-c"]));
        // Upper case is lowered in the readable part but still distinguishes the hash.
        let upper = join(&["Example", "zone1"]);
        assert!(upper.starts_with("example-zone1-"));
        assert_ne!(upper, cluster::cell("example", "zone1"));
    }

    #[test]
    fn invalid_characters_and_first_letter() {
        let name = join(&["my_cluster", "a.b"]);
        assert!(name.starts_with("my-cluster-a-b-"), "{name}");
        // Services must start with a letter; other objects may start with a digit.
        assert!(join_service(&["1abc"]).starts_with("x1abc-"));
        assert!(join(&["1abc"]).starts_with("1abc-"));
    }

    #[test]
    fn long_names_truncate_and_keep_hash() {
        let long = "a".repeat(100);
        let svc = join_service(&[&long, "vtctld"]);
        assert_eq!(svc.len(), 63);
        assert!(svc.ends_with(&format!("---{}", hash(&[&long, "vtctld"]))));
        let obj = join(&[&"b".repeat(300)]);
        assert_eq!(obj.len(), 253);
        // Exactly at the limit: no truncation.
        let fits = "c".repeat(63 - 9);
        assert_eq!(join_service(&[&fits]).len(), 63);
        assert!(!join_service(&[&fits]).contains("---"));
    }
}
