//! The Dockerfile, without docker (this machine has none): its build stage's `cargo build`
//! line is run on the host with the same flags and the same static musl target, and the
//! binary must be static and answer `--help`; the final stage must be distroless, non-root
//! and need no shell. The build goes to a target directory outside the clone
//! (`~/.cache/vitess-operator/dockerfile-target/`, or `$VITESS_OPERATOR_CACHE/...`), so that
//! later runs, also from fresh clones (CI), rebuild only the operator's own crate: the first
//! run took 9 min on 2 cores, and its time is printed.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use vitess_operator_e2e::{is_static_elf, workspace_dir};

const TARGET: &str = "x86_64-unknown-linux-musl";

/// The Dockerfile's instructions, line continuations joined: (stage name, instruction).
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stage = String::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if let Some(rest) = line.strip_suffix('\\') {
            current.push_str(rest);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let instruction = std::mem::take(&mut current);
        if instruction.starts_with("FROM ") {
            stage = instruction
                .split_whitespace()
                .skip_while(|w| !w.eq_ignore_ascii_case("as"))
                .nth(1)
                .unwrap_or("final")
                .to_string();
        }
        out.push((stage.clone(), instruction));
    }
    out
}

fn has_target(target: &str) -> bool {
    Command::new("rustc")
        .args(["--print", "target-libdir", "--target", target])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .is_some_and(|dir| dir.is_dir())
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

#[test]
fn dockerfile_build_stage_builds_a_static_binary_that_runs() -> Result<()> {
    let text = std::fs::read_to_string(workspace_dir().join("Dockerfile"))?;
    let instructions = instructions(&text);

    // The final stage: distroless static, non-root, exec-form entrypoint (no shell).
    let last_from = instructions
        .iter()
        .rposition(|(_, i)| i.starts_with("FROM "))
        .context("no FROM")?;
    let last = &instructions[last_from..];
    assert!(last[0].1.contains("distroless/static"), "{}", last[0].1);
    assert!(
        last.iter().any(|(_, i)| i == "USER 65532:65532"),
        "the final stage runs as 65532: {last:?}"
    );
    assert!(
        last.iter()
            .any(|(_, i)| i.starts_with("ENTRYPOINT [\"/vitess-operator\"]")),
        "an exec-form entrypoint: {last:?}"
    );

    // The build stage's cargo command.
    let run = instructions
        .iter()
        .find(|(stage, i)| stage == "build" && i.starts_with("RUN cargo build"))
        .map(|(_, i)| i.clone())
        .context("no `RUN cargo build` in the build stage")?;
    let mut args: Vec<String> = run
        .split_whitespace()
        .skip(2) // RUN cargo
        .map(str::to_string)
        .collect();
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--target" && w[1] == TARGET),
        "{run}"
    );
    assert!(args.iter().any(|a| a == "--locked") && args.iter().any(|a| a == "--release"));

    // The target the Dockerfile installs with rustup, and the C compiler ring needs for it
    // (musl-tools): CI installs both (.ci/run, `make tools`). Without them, the same flags
    // for the host target, said loudly.
    let static_build = has_target(TARGET) && on_path("x86_64-linux-musl-gcc");
    if !static_build {
        eprintln!(
            "dockerfile: WARNING: the {TARGET} target or musl-gcc is missing \
             (`make tools`, `apt-get install musl-tools`); building for the host target instead"
        );
        let at = args
            .iter()
            .position(|a| a == "--target")
            .context("--target")?;
        args.drain(at..at + 2);
    }
    let target_dir = std::env::var_os("VITESS_OPERATOR_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vitess-operator"))
        })
        .context("neither VITESS_OPERATOR_CACHE nor HOME is set")?
        .join("dockerfile-target");
    let started = Instant::now();
    let status = Command::new("cargo")
        .args(&args)
        .current_dir(workspace_dir())
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .context("running cargo")?;
    eprintln!(
        "dockerfile: `cargo {}` took {:.0} s",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }

    let binary = if static_build {
        target_dir.join(TARGET).join("release/vitess-operator")
    } else {
        target_dir.join("release/vitess-operator")
    };
    if static_build {
        assert!(
            is_static_elf(&binary)?,
            "{} is not static",
            binary.display()
        );
    }
    let out = Command::new(&binary).arg("--help").output()?;
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "--help failed: {out:?}");
    assert!(help.contains("Usage:") && help.contains("run"), "{help}");
    let size = std::fs::metadata(&binary)?.len();
    eprintln!(
        "dockerfile: {} is {:.1} MB, static: {static_build}",
        binary.display(),
        size as f64 / 1e6
    );
    Ok(())
}

#[test]
fn instructions_join_continuations_and_know_their_stage() {
    let parsed = instructions("# c\nFROM rust AS build\nRUN a \\\n b\nFROM x\nUSER 1\n");
    assert_eq!(
        parsed,
        vec![
            ("build".to_string(), "FROM rust AS build".to_string()),
            ("build".to_string(), "RUN a  b".to_string()),
            ("final".to_string(), "FROM x".to_string()),
            ("final".to_string(), "USER 1".to_string()),
        ]
    );
}
