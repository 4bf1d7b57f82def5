//! The Go operator, from its source in the anchors, for the compat tests: where the anchors
//! are, and `e2e/go-operator` (which extracts and builds it, cached) run for its paths.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail, ensure};

use crate::{e2e_dir, in_ci, workspace_dir};

/// The anchors folder (`$VITESS_OPERATOR_ANCHORS`, else `<repo>/../shared/anchors`).
pub fn anchors_dir() -> PathBuf {
    match std::env::var_os("VITESS_OPERATOR_ANCHORS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_dir().join("../shared/anchors"),
    }
}

/// The path `e2e/go-operator <command>` prints for each of `commands` (`source`: the extracted
/// source; `build`: the binary), in order. `None` when the anchors hold no Go operator
/// tarball, outside CI (after saying on stderr that `test` is skipped); under `CI=true`
/// missing anchors fail, so a broken setup cannot pass as green.
pub fn go_operator(test: &str, commands: &[&str]) -> Result<Option<Vec<PathBuf>>> {
    let dir = anchors_dir();
    let has_tarball = std::fs::read_dir(&dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("vitess-operator-go-") && name.ends_with(".tar.gz")
        })
    });
    if !has_tarball {
        let why = format!(
            "no vitess-operator-go-<commit>.tar.gz in {} (set VITESS_OPERATOR_ANCHORS to the \
             folder of the Go operator's source tarball)",
            dir.display()
        );
        if in_ci() {
            bail!("{test}: {why}; CI=true needs the anchors for `make compat`");
        }
        eprintln!("SKIPPED {test}: {why}");
        return Ok(None);
    }
    let run = |command: &str| -> Result<PathBuf> {
        let out = std::process::Command::new(e2e_dir().join("go-operator"))
            .arg(command)
            .output()
            .with_context(|| format!("running e2e/go-operator {command}"))?;
        ensure!(
            out.status.success(),
            "e2e/go-operator {command} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    };
    commands
        .iter()
        .map(|c| run(c))
        .collect::<Result<_>>()
        .map(Some)
}
