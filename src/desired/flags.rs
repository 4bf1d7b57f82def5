//! Command-line flags of the binaries the operator runs: the operator's own first, then the
//! cluster-wide `extraVitessFlags`, then the component's `extraFlags` (the later wins), written
//! as `--name=value` arguments sorted by name so the pod spec never changes by accident.

use std::collections::BTreeMap;

use super::defaults;
use crate::api::shared::{Flags, VitessLockserverParams};

/// One binary's flags, keyed by their normalised name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagSet {
    flags: BTreeMap<String, String>,
    syntax: Syntax,
}

/// How a binary's flag parser reads its command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Syntax {
    /// Vitess (pflag): names are normalised to dashes, every flag is `--name=value`.
    Vitess,
    /// Go's `flag` package (etcd): `--name=value` as written.
    #[default]
    Plain,
    /// kingpin (mysqld_exporter): like `Plain`, except that a boolean flag takes no value
    /// (kingpin refuses `--name=true` with "unexpected true"): `true` is written `--name`
    /// and `false` `--no-name`.
    Kingpin,
}

impl FlagSet {
    /// Flags of a Vitess binary. Vitess (v23 on) takes `a_b` as the deprecated spelling of
    /// `a-b`; normalising the same way here makes `extraFlags: {tablet_hostname: x}` replace our
    /// `--tablet-hostname` instead of passing both spellings.
    pub fn vitess() -> Self {
        Self {
            flags: BTreeMap::new(),
            syntax: Syntax::Vitess,
        }
    }

    /// Flags of another binary (etcd, mysqld_exporter): names are kept as written.
    pub fn plain() -> Self {
        Self {
            flags: BTreeMap::new(),
            syntax: Syntax::Plain,
        }
    }

    /// Flags of a Prometheus exporter (kingpin): boolean values are written as kingpin takes
    /// them, so `extraFlags: {collect.info_schema.processlist: "true"}` does not stop it.
    pub fn kingpin() -> Self {
        Self {
            flags: BTreeMap::new(),
            syntax: Syntax::Kingpin,
        }
    }

    /// Sets one flag, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: impl ToString) -> &mut Self {
        self.flags
            .insert(normalize(name, self.syntax), value.to_string());
        self
    }

    /// Where the global topology is: implementation, address and root (every Vitess server
    /// and vtbackup).
    pub fn global_topo(&mut self, topo: &VitessLockserverParams) -> &mut Self {
        self.set("topo-implementation", &topo.implementation)
            .set("topo-global-server-address", &topo.address)
            .set("topo-global-root", &topo.root_path)
    }

    /// Where the global topology is, and the settings every Vitess server shares: logs go to
    /// stderr (the container log), the web and gRPC ports are the Go operator's.
    pub fn vitess_common(&mut self, topo: &VitessLockserverParams) -> &mut Self {
        self.global_topo(topo)
            .set("logtostderr", true)
            .set("port", defaults::WEB_PORT)
            .set("grpc-port", defaults::GRPC_PORT)
    }

    /// The MySQL version Vitess reports to clients, taken from the mysqld image's tag as the
    /// Go operator takes it (`mysql:8.0.40` gives `8.0.40-Vitess`); nothing when the tag does
    /// not start as a version (`latest`), so Vitess keeps its own default.
    pub fn mysql_server_version(&mut self, mysqld_image: &str) -> &mut Self {
        if let Some(version) = server_version(mysqld_image) {
            self.set("mysql-server-version", version);
        }
        self
    }

    /// Applies user-given flags over what is already set.
    pub fn extend(&mut self, extra: Option<&Flags>) -> &mut Self {
        for (name, value) in extra.into_iter().flatten() {
            self.set(name, value);
        }
        self
    }

    /// The value of a flag, by any spelling of its name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags
            .get(&normalize(name, self.syntax))
            .map(String::as_str)
    }

    /// The container arguments, sorted by flag name.
    pub fn args(&self) -> Vec<String> {
        self.flags
            .iter()
            .map(|(name, value)| match (self.syntax, value.as_str()) {
                (Syntax::Kingpin, "true") => format!("--{name}"),
                (Syntax::Kingpin, "false") => format!("--no-{name}"),
                _ => format!("--{name}={value}"),
            })
            .collect()
    }
}

/// Strips the leading dashes people write despite the API docs, and for Vitess turns names that
/// use only underscores into dashes, exactly as Vitess' own flag normaliser does (it leaves the
/// glog flags `log_dir`, `log_link` and `log_backtrace_at` and mixed names alone).
fn normalize(name: &str, syntax: Syntax) -> String {
    let name = name.trim_start_matches('-');
    let glog = matches!(name, "log_dir" | "log_link" | "log_backtrace_at");
    if syntax == Syntax::Vitess && !glog && name.contains('_') && !name.contains('-') {
        name.replace('_', "-")
    } else {
        name.to_string()
    }
}

/// `<tag>-Vitess` for an image `name:tag` whose tag Vitess reads as a MySQL version: leading
/// dot-separated numbers (at most three), at least one, no empty part before a dot; the rest
/// of the tag is kept as written. The split is at the first `:`, as the Go operator's.
fn server_version(image: &str) -> Option<String> {
    let (_, tag) = image.split_once(':')?;
    let mut parts = 0;
    let mut digits = 0;
    for c in tag.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' if digits == 0 => return None,
            '.' => {
                parts += 1;
                digits = 0;
                if parts == 3 {
                    break;
                }
            }
            _ => break,
        }
    }
    (parts > 0 || digits > 0).then(|| format!("{tag}-Vitess"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_version_is_read_from_the_image_tag_as_the_go_operator_reads_it() {
        let version = |image: &str| server_version(image);
        assert_eq!(version("mysql:8.0.40").as_deref(), Some("8.0.40-Vitess"));
        assert_eq!(version("mysql:8.4").as_deref(), Some("8.4-Vitess"));
        assert_eq!(
            version("percona/percona-server:8.0.39-30").as_deref(),
            Some("8.0.39-30-Vitess")
        );
        assert_eq!(version("mysql:latest"), None);
        assert_eq!(version("mysql"), None);
        assert_eq!(version("mysql:.8"), None);
        let mut flags = FlagSet::vitess();
        flags.mysql_server_version("mysql:8.0.40");
        assert_eq!(flags.args(), ["--mysql-server-version=8.0.40-Vitess"]);
        flags.mysql_server_version("mysql:latest");
        assert_eq!(flags.args(), ["--mysql-server-version=8.0.40-Vitess"]);
    }

    #[test]
    fn later_values_win_under_any_spelling() {
        let mut flags = FlagSet::vitess();
        flags.set("grpc_port", 15999).set("cell", "zone1");
        let extra: Flags = [("--grpc_port".to_string(), "1".to_string())].into();
        flags.extend(Some(&extra));
        assert_eq!(flags.args(), ["--cell=zone1", "--grpc-port=1"]);
        assert_eq!(flags.get("grpc-port"), Some("1"));
    }

    #[test]
    fn vitess_normalisation_matches_vitess() {
        assert_eq!(normalize("db_charset", Syntax::Vitess), "db-charset");
        assert_eq!(normalize("log_dir", Syntax::Vitess), "log_dir");
        assert_eq!(
            normalize("queryserver-config_pool", Syntax::Vitess),
            "queryserver-config_pool"
        );
        assert_eq!(
            normalize("--collect.info_schema", Syntax::Kingpin),
            "collect.info_schema"
        );
    }

    #[test]
    fn kingpin_booleans_take_no_value() {
        let mut flags = FlagSet::kingpin();
        flags
            .set("collect.info_schema.processlist", "true")
            .set("collect.slave_status", "false")
            .set("config.my-cnf", "/my.cnf");
        assert_eq!(
            flags.args(),
            [
                "--collect.info_schema.processlist",
                "--no-collect.slave_status",
                "--config.my-cnf=/my.cnf"
            ]
        );
        let mut plain = FlagSet::plain();
        plain.set("strict-reconfig-check", "true");
        assert_eq!(plain.args(), ["--strict-reconfig-check=true"]);
    }
}
