//! What the shipped binary links: its normal dependencies (`cargo tree -e normal`) hold no test
//! code, neither the fake vtctld nor gRPC server code (tonic's router, axum).

use std::process::Command;

/// Every package in the normal dependency tree of `package`, one `name vX.Y.Z` per line.
fn normal_dependencies(package: &str) -> Vec<String> {
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
        .args(["--prefix", "none", "--format", "{p}"])
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
