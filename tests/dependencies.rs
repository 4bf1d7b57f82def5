//! What the shipped binary links: its normal dependencies (`cargo tree -e normal`) hold no test
//! code, neither the fake vtctld nor gRPC server code (tonic's router or server transport,
//! axum, hyper's server).

use std::process::Command;

/// Every package in the normal dependency tree of `package`, one `name vX.Y.Z` per line.
fn normal_dependencies(package: &str) -> Vec<String> {
    tree(package, "{p}")
}

/// `cargo tree -e normal -p package --format format`, one line per package, sorted, unique.
fn tree(package: &str, format: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--locked",
            "--offline",
            "-e",
            "normal",
            "-p",
            package,
        ])
        .args(["--prefix", "none", "--format", format])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim_end_matches(" (*)").to_string())
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

#[test]
fn the_binary_links_no_fake_and_no_server() {
    let deps = normal_dependencies("vitess-operator");
    assert!(
        deps.iter().any(|d| d.starts_with("vtctld-client ")),
        "the vtctld client is a normal dependency: {deps:?}"
    );
    for forbidden in ["vtctld-fake ", "axum ", "tower-test "] {
        assert!(
            !deps.iter().any(|d| d.starts_with(forbidden)),
            "{} is in the operator's normal dependencies",
            forbidden.trim()
        );
    }
}

#[test]
fn the_client_crate_links_no_server() {
    let deps = normal_dependencies("vtctld-client");
    assert!(
        !deps.iter().any(|d| d.starts_with("axum ")),
        "the client pulls in gRPC server code: {deps:?}"
    );
}

/// The features a package is built with in `package`'s normal tree (`cargo tree` prints each
/// package as `name vX.Y.Z feature,feature`).
fn features_of(package: &str, dependency: &str) -> Vec<String> {
    tree(package, "{p} {f}")
        .iter()
        .filter(|line| line.starts_with(&format!("{dependency} v")))
        .flat_map(|line| {
            line.split_whitespace()
                .nth(2)
                .unwrap_or_default()
                .split(',')
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn tonic_and_hyper_are_built_without_their_servers() {
    let tonic = features_of("vitess-operator", "tonic");
    assert!(
        tonic.iter().any(|f| f == "channel"),
        "tonic features: {tonic:?}"
    );
    for server in ["server", "router", "transport"] {
        assert!(
            !tonic.iter().any(|f| f == server),
            "tonic is built with {server}: {tonic:?}"
        );
    }
    let hyper = features_of("vitess-operator", "hyper");
    assert!(
        !hyper.iter().any(|f| f == "server"),
        "hyper is built with server: {hyper:?}"
    );
}
