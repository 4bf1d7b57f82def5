//! What mysqld's my.cnf is made of in a tablet or vtbackup pod: Vitess' own template, then the
//! fragments named in `EXTRA_MY_CNF`, in order (mysqlctld concatenates them when it writes
//! my.cnf, at every start). A pool's `mysqld.configOverrides` is the last fragment but one,
//! delivered as the Go operator delivers it: the text is an annotation of the pod, which its
//! containers see as a file through the downward API. The annotation is part of the pod the
//! builder makes, so changing the overrides rolls the tablets under the update strategy like
//! any other change of the pod, and a running pod never sees its my.cnf change under it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, DownwardAPIVolumeSource, ObjectFieldSelector, Volume, VolumeMount,
};

use crate::api::shard::VitessShardTabletPool;

/// The annotation holding the overrides (the Go operator's key).
pub const OVERRIDES_ANNOTATION: &str = "planetscale.com/mysqld-config-overrides";
/// The downward-API volume and where the containers mount it (the Go operator's names).
const OVERRIDES_VOLUME: &str = "pod-config";
const OVERRIDES_DIR: &str = "/pod-config";
const OVERRIDES_FILE: &str = "mysqld-config-overrides";

/// Vitess' fragments every tablet reads, written by the pod's init container: row-based
/// binlogs, the error log to the container's log, the socket where vttablet looks.
const BASE: &str =
    "/vt/config/mycnf/rbr.cnf:/vt/config/mycnf/log-error.cnf:/vt/config/mycnf/socket.cnf";
/// vtbackup's own fragment (no fsync per commit: it restores and backs up, nothing else),
/// last so that no override undoes it. The Go operator names it in tablets too when there are
/// overrides; mysqlctld skips a fragment that does not exist, as it is in a tablet.
const VTBACKUP: &str = "/vt/config/mycnf/vtbackup.cnf";

/// A pool's non-empty `mysqld.configOverrides`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overrides<'a>(&'a str);

impl<'a> Overrides<'a> {
    /// The overrides of `pool`; none when it has none or they are empty (no volume, no
    /// annotation: a pool without them builds the pod it always did).
    pub fn of(pool: &'a VitessShardTabletPool) -> Option<Self> {
        pool.mysqld
            .as_ref()
            .and_then(|m| m.config_overrides.as_deref())
            .filter(|text| !text.is_empty())
            .map(Overrides)
    }

    /// The pod annotation carrying the text.
    pub fn annotate(&self, annotations: &mut BTreeMap<String, String>) {
        annotations.insert(OVERRIDES_ANNOTATION.into(), self.0.into());
    }

    /// The downward-API volume that turns the annotation into a file.
    pub fn volume() -> Volume {
        Volume {
            name: OVERRIDES_VOLUME.into(),
            downward_api: Some(DownwardAPIVolumeSource {
                items: Some(vec![DownwardAPIVolumeFile {
                    path: OVERRIDES_FILE.into(),
                    field_ref: Some(ObjectFieldSelector {
                        field_path: format!("metadata.annotations['{OVERRIDES_ANNOTATION}']"),
                        ..ObjectFieldSelector::default()
                    }),
                    ..DownwardAPIVolumeFile::default()
                }]),
                ..DownwardAPIVolumeSource::default()
            }),
            ..Volume::default()
        }
    }

    /// The volume's mount, in every container that runs mysqlctld, vttablet or vtbackup.
    pub fn mount() -> VolumeMount {
        VolumeMount {
            name: OVERRIDES_VOLUME.into(),
            mount_path: OVERRIDES_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }
    }
}

/// The value of `EXTRA_MY_CNF`: Vitess' fragments, then the overrides if any, then (for
/// vtbackup, and with overrides for a tablet too, as the Go operator does) vtbackup's.
pub fn extra_my_cnf(overrides: bool, vtbackup: bool) -> String {
    let mut files = vec![BASE.to_string()];
    if overrides {
        files.push(format!("{OVERRIDES_DIR}/{OVERRIDES_FILE}"));
    }
    if overrides || vtbackup {
        files.push(VTBACKUP.into());
    }
    files.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::shard::MysqldSpec;

    fn pool(overrides: Option<&str>) -> VitessShardTabletPool {
        VitessShardTabletPool {
            mysqld: Some(MysqldSpec {
                config_overrides: overrides.map(str::to_string),
                ..MysqldSpec::default()
            }),
            ..VitessShardTabletPool::default()
        }
    }

    #[test]
    fn overrides_come_after_vitess_fragments_and_before_vtbackups() {
        assert_eq!(
            extra_my_cnf(false, false),
            "/vt/config/mycnf/rbr.cnf:/vt/config/mycnf/log-error.cnf:/vt/config/mycnf/socket.cnf"
        );
        assert!(
            extra_my_cnf(false, true)
                .ends_with(":/vt/config/mycnf/socket.cnf:/vt/config/mycnf/vtbackup.cnf")
        );
        for vtbackup in [false, true] {
            assert!(extra_my_cnf(true, vtbackup).ends_with(
                ":/vt/config/mycnf/socket.cnf:/pod-config/mysqld-config-overrides:/vt/config/mycnf/vtbackup.cnf"
            ));
        }
    }

    #[test]
    fn empty_or_absent_overrides_are_none() {
        assert_eq!(Overrides::of(&pool(None)), None);
        assert_eq!(Overrides::of(&pool(Some(""))), None);
        assert_eq!(
            Overrides::of(&VitessShardTabletPool::default()),
            None,
            "a pool without mysqld"
        );
        let text = "[mysqld]\nmax_connections = 321\n";
        let with = pool(Some(text));
        let overrides = Overrides::of(&with).expect("overrides");
        let mut annotations = BTreeMap::new();
        overrides.annotate(&mut annotations);
        assert_eq!(annotations[OVERRIDES_ANNOTATION], text);
        let volume = Overrides::volume();
        let item = &volume
            .downward_api
            .expect("downward API")
            .items
            .expect("items")[0];
        assert_eq!(item.path, "mysqld-config-overrides");
        assert_eq!(
            item.field_ref.as_ref().map(|f| f.field_path.as_str()),
            Some("metadata.annotations['planetscale.com/mysqld-config-overrides']")
        );
    }
}
