//! Where things live: the e2e directory, its state, the cached binaries.

use std::path::{Path, PathBuf};

/// vtctld's gRPC address when `VTCTLD_ADDR` is not set (see e2e/cluster).
pub const DEFAULT_VTCTLD_ADDR: &str = "127.0.0.1:25999";

/// The `e2e/` directory of the repository.
pub fn e2e_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The workspace root (the parent of `e2e/`).
pub fn workspace_dir() -> PathBuf {
    let e2e = e2e_dir();
    e2e.parent().map(Path::to_path_buf).unwrap_or(e2e)
}

/// `e2e/.state`, written by `e2e/cluster up`.
pub fn state_dir() -> PathBuf {
    e2e_dir().join(".state")
}

/// `e2e/.state/logs`.
pub fn logs_dir() -> PathBuf {
    state_dir().join("logs")
}

/// The admin kubeconfig of the e2e cluster: `$KUBECONFIG_E2E` if set, else
/// `e2e/.state/kubeconfig`.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("KUBECONFIG_E2E") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => state_dir().join("kubeconfig"),
    }
}

/// vtctld's gRPC address: `$VTCTLD_ADDR` if set, else [`DEFAULT_VTCTLD_ADDR`].
pub fn vtctld_addr() -> String {
    match std::env::var("VTCTLD_ADDR") {
        Ok(a) if !a.is_empty() => a,
        _ => DEFAULT_VTCTLD_ADDR.to_string(),
    }
}

/// Path of a binary built by `e2e/cluster` (kubectl, vtctldclient, etcdctl…):
/// in `$E2E_BIN_DIR` if set, else in the directory recorded by `e2e/cluster up`
/// in `e2e/.state/bin-dir`, else the bare name (looked up on `PATH`).
pub fn tool_path(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("E2E_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join(name);
    }
    if let Ok(dir) = std::fs::read_to_string(state_dir().join("bin-dir")) {
        let candidate = PathBuf::from(dir.trim()).join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from(name)
}

/// Writes `figures` as `target/e2e-figures/<name>.json` (what a test measured; tests assert no
/// times) and returns the file's path.
pub fn write_figures(name: &str, figures: &serde_json::Value) -> anyhow::Result<PathBuf> {
    let dir = workspace_dir().join("target/e2e-figures");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(figures)?)?;
    eprintln!("figures written to {}", path.display());
    Ok(path)
}
