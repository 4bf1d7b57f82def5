//! The command line as a user runs it: exit codes, one line per problem, and `render` output
//! that is itself valid against our CRDs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vitess-operator"))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).current_dir(root()).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "examples/ lost its examples");
    files
}

#[test]
fn validate_accepts_every_example() {
    let mut args = vec!["validate".to_string()];
    for file in examples() {
        args.push("-f".into());
        args.push(file.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // Every example is acted on whole: not one warning.
    assert_eq!(stdout(&out), "");
}

#[test]
fn validate_rejects_with_one_line_per_problem() {
    let file = "tests/fixtures/invalid/overlapping-shards.yaml";
    let out = run(&["validate", "-f", file]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let prefix =
        format!("{file}: VitessCluster/shop: spec.keyspaces[0].partitionings[0].custom.shards");
    assert_eq!(
        lines,
        [
            format!(
                "{prefix}[1].keyRange: key range 40- overlaps spec.keyspaces[0].partitionings[0].custom.shards[0] (-80)"
            ),
            format!(
                "{prefix}[1].tabletPools[0].cell: cell \"west\" is not one of the cluster's cells (east)"
            ),
        ]
    );
}

#[test]
fn validate_reads_stdin_and_reports_unreadable_files() {
    let mut child = bin()
        .args(["validate", "-f", "-", "-f", "no-such-file.yaml"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"apiVersion: planetscale.com/v2\nkind: VitessShard\nmetadata: {name: s}\nspec: {}\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("-: VitessShard/s: spec.name: required field is missing"),
        "{text}"
    );
    assert!(
        text.contains("no-such-file.yaml: file: cannot read"),
        "{text}"
    );
}

#[test]
fn render_single_shard_example_uses_go_operator_names() {
    let out = run(&["render", "-f", "examples/initial-cluster.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for name in [
        "name: example-zone1-5abb61ae",
        "name: example-commerce-fb9b866a",
        "name: example-commerce-x-x-0f5afee6",
        "name: example-etcd-faf13de3",
    ] {
        assert!(text.contains(name), "missing {name} in:\n{text}");
    }
    assert!(text.contains("planetscale.com/shard: x-x"));
}

#[test]
fn render_output_is_valid_against_the_crds() {
    for file in examples() {
        let rendered = run(&["render", "-f", &file.display().to_string()]);
        assert_eq!(rendered.status.code(), Some(0), "{}", file.display());
        let dir = std::env::temp_dir().join(format!("render-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out_file = dir.join(file.file_name().unwrap());
        std::fs::write(&out_file, &rendered.stdout).unwrap();
        let check = run(&["validate", "-f", &out_file.display().to_string()]);
        assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    }
}

#[test]
fn render_sharded_keyspace_makes_one_shard_per_range() {
    let out = run(&["render", "-f", "examples/two-keyspaces.yaml"]);
    let text = stdout(&out);
    let shards: Vec<&str> = text
        .split("---\n")
        .filter(|doc| doc.contains("kind: VitessShard"))
        .collect();
    assert_eq!(shards.len(), 3, "commerce - and customer -80, 80-");
    let names: Vec<String> = shards
        .iter()
        .filter_map(|d| d.lines().find(|l| l.starts_with("  name: example-")))
        .map(|l| l.trim().trim_start_matches("name: ").to_string())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("example-customer-x-80-")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("example-customer-80-x-")),
        "{names:?}"
    );
}

#[test]
fn render_refuses_invalid_input() {
    let out = run(&[
        "render",
        "-f",
        "tests/fixtures/invalid/overlapping-shards.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid, nothing rendered"));
}

#[test]
fn crd_prints_every_committed_crd() {
    let out = run(&["crd"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for kind in [
        "VitessCluster",
        "VitessCell",
        "VitessKeyspace",
        "VitessShard",
        "EtcdLockserver",
        "VitessBackupStorage",
        "VitessBackup",
        "VitessBackupSchedule",
    ] {
        assert!(text.contains(&format!("kind: {kind}\n")), "{kind} missing");
    }
    assert_eq!(text.matches("kind: CustomResourceDefinition").count(), 8);
}

#[test]
fn render_prints_the_workloads_with_go_operator_names() {
    let out = run(&["render", "-f", "examples/initial-cluster.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let docs: Vec<&str> = text.split("---\n").collect();
    let named = |kind: &str, name: &str| {
        docs.iter().any(|d| {
            d.contains(&format!("kind: {kind}\n")) && d.contains(&format!("  name: {name}\n"))
        })
    };
    assert!(
        named("Deployment", "example-zone1-vtctld-1d4dcad0"),
        "{text}"
    );
    assert!(named("Deployment", "example-zone1-vtgate-bc6cde92"));
    // vtorc of the shard, one per cell with a replica pool (Go operator name).
    assert!(named(
        "Deployment",
        "example-commerce-x-x-zone1-vtorc-c13ef6ff"
    ));
    assert!(named("Pod", "example-vttablet-zone1-2469782763-bfadd780"));
    assert!(named(
        "PersistentVolumeClaim",
        "example-vttablet-zone1-2469782763-bfadd780"
    ));
    let first_tablet = docs.iter().any(|d| {
        d.contains("kind: Pod\n") && d.contains("  name: example-vttablet-zone1-2548885007-")
    });
    assert!(first_tablet, "the index-1 tablet is missing");
    for member in 1..=3 {
        assert!(named("Pod", &format!("example-etcd-faf13de3-{member}")));
    }
    // Two tablets of one pool, three etcd members; and the same output every time.
    assert_eq!(docs.iter().filter(|d| d.contains("kind: Pod\n")).count(), 5);
    let again = run(&["render", "-f", "examples/initial-cluster.yaml"]);
    assert_eq!(stdout(&again), text, "render is not deterministic");
}

#[test]
fn render_prints_the_vtbackup_init_pod_of_a_shard_with_backups() {
    let out = run(&["render", "-f", "examples/backup-gcs.yaml"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    let docs: Vec<&str> = text.split("---\n").collect();
    let init = |kind: &str| {
        docs.iter()
            .position(|d| {
                d.contains(&format!("kind: {kind}\n"))
                    && d.contains("  name: example-commerce-x-x-vtbackup-init-")
            })
            .unwrap_or_else(|| panic!("no vtbackup-init {kind} in:\n{text}"))
    };
    // Its claim comes before the pod that mounts it, as the shard controller applies them.
    assert!(init("PersistentVolumeClaim") < init("Pod"));
    // The example without backups has none.
    let plain = stdout(&run(&["render", "-f", "examples/initial-cluster.yaml"]));
    assert!(!plain.contains("vtbackup-init"), "{plain}");
}
