//! The Dockerfile, without docker (this machine has none): its build stage's `cargo build`
//! line is run on the host with the same flags and the same static musl target, and the
//! binary must be static and answer `--help`; the final stage must be distroless, non-root
//! and need no shell. The build goes to a target directory outside the clone
//! (`~/.cache/vitess-operator/dockerfile-target/`, or `$VITESS_OPERATOR_CACHE/...`), so that
//! later runs, also from fresh clones (CI), rebuild only the operator's own crate: the first
//! run took 9 min on 2 cores, and its time is printed.
//!
//! Then the image of that binary runs in the cluster as a user installs it: loaded into the
//! real node (`e2e/cluster load-image`), installed with `kubectl apply -k` of config/ (an
//! overlay that only sets the namespace, names the image and places the pods on the real
//! node), it reaches the API server through the `kubernetes` Service with its ServiceAccount,
//! holds the leader Lease from one of its two replicas, and makes the example cluster's
//! children. `make demo` installs it the same way.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use vitess_operator_e2e::{
    TestNamespace, client, dynamic, e2e_dir, in_ci, is_ready, is_static_elf, kubectl,
    kubectl_with_stdin, lease_holder, real_node, state_dir, wait_for, workspace_dir,
    write_operator_overlay,
};

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

/// The binary the Dockerfile's build stage makes, built here with its `cargo build` line (see
/// the module comment), and whether it is the static musl build (else the host's).
fn dockerfile_binary() -> Result<(PathBuf, bool)> {
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
    let mut cargo = Command::new("cargo");
    cargo.args(&args).current_dir(workspace_dir());
    // What `cargo test` sets for this test process (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, ...)
    // is not the build stage's environment, and build scripts that watch those variables
    // (ring's) would build again what `e2e/image-binary` built from a shell.
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if (key_text.starts_with("CARGO_") && key_text != "CARGO_HOME") || key_text == "OUT_DIR" {
            cargo.env_remove(&key);
        }
    }
    cargo.env("CARGO_TARGET_DIR", &target_dir);
    let status = cargo.status().context("running cargo")?;
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
    Ok((binary, static_build))
}

#[test]
fn dockerfile_build_stage_builds_a_static_binary_that_runs() -> Result<()> {
    let (binary, static_build) = dockerfile_binary()?;
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

/// The children of `examples/initial-cluster.yaml` the in-cluster operator must make, by kind.
const CHILDREN: [(&str, &str); 4] = [
    ("EtcdLockserver", "example-etcd-faf13de3"),
    ("VitessCell", "example-zone1-5abb61ae"),
    ("VitessKeyspace", "example-commerce-fb9b866a"),
    ("VitessShard", "example-commerce-x-x-0f5afee6"),
];
const TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test]
async fn the_image_runs_in_the_cluster_as_config_installs_it() -> Result<()> {
    const TEST: &str = "dockerfile in-cluster";
    let client = client().await?;
    let Some(node) = real_node(&client, TEST).await? else {
        return Ok(());
    };
    let (binary, static_build) = tokio::task::spawn_blocking(dockerfile_binary).await??;
    if !static_build {
        ensure!(
            !in_ci(),
            "{TEST}: the image needs the static build (the {TARGET} target and musl-gcc)"
        );
        eprintln!("skipping {TEST}: no static build for the image");
        return Ok(());
    }
    let digest = Command::new("sha256sum").arg(&binary).output()?;
    // The tag e2e/demo gives the same binary: one image for both.
    let digest = String::from_utf8_lossy(&digest.stdout).into_owned();
    let tag = format!("dev-{}", digest.get(..12).context("sha256sum")?);
    let image = format!("vitess-operator:{tag}");
    let load = Command::new(e2e_dir().join("cluster"))
        .args(["load-image", &image])
        .arg(&binary)
        .output()?;
    ensure!(
        load.status.success(),
        "e2e/cluster load-image failed: {}",
        String::from_utf8_lossy(&load.stderr)
    );

    let ns = TestNamespace::create(&client, "in-cluster").await?;
    let namespace = ns.name().to_string();
    let overlay = state_dir().join(format!("install-{namespace}"));
    write_operator_overlay(&overlay, Some(&namespace), &tag)?;
    let overlay_path = overlay.to_string_lossy().into_owned();
    kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "-k",
        &overlay_path,
    ])
    .await?;

    // Both replicas run the image on the real node and are Ready (/readyz), one holds the Lease.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let selector = ListParams::default().labels("app.kubernetes.io/name=vitess-operator");
    let names = wait_for(
        "the operator's two pods Ready on the real node",
        TIMEOUT,
        async |seen: &mut String| {
            let list = pods.list(&selector).await?;
            let ready: Vec<String> = list
                .items
                .iter()
                .filter(|p| is_ready(p))
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(&node))
                .map(|p| p.name_any())
                .collect();
            *seen = format!(
                "{} pods, Ready on {node}: {ready:?}; phases {:?}",
                list.items.len(),
                list.items
                    .iter()
                    .map(|p| p.status.as_ref().and_then(|s| s.phase.clone()))
                    .collect::<Vec<_>>()
            );
            Ok((ready.len() == 2).then_some(ready))
        },
    )
    .await?;
    for name in &names {
        let pod = pods.get(name).await?;
        let container = &pod.spec.context("pod spec")?.containers[0];
        assert_eq!(container.image.as_deref(), Some(image.as_str()), "{name}");
    }
    let holder = wait_for(
        "the leader Lease held by one of the pods",
        TIMEOUT,
        async |seen: &mut String| {
            let holder = lease_holder(&client, &namespace, "vitess-operator-leader").await?;
            *seen = format!("holder {holder:?}");
            Ok(holder.filter(|h| names.iter().any(|n| h.starts_with(n.as_str()))))
        },
    )
    .await?;
    eprintln!("{TEST}: pods {names:?}, leader {holder}");

    // It acts: the example becomes its children (on KWOK nodes, as the example has no
    // placement), made by the ServiceAccount the Role binds.
    let yaml = std::fs::read_to_string(workspace_dir().join("examples/initial-cluster.yaml"))?;
    kubectl_with_stdin(
        &["apply", "--server-side", "-n", &namespace, "-f", "-"],
        Some(&yaml),
    )
    .await?;
    for (kind, name) in CHILDREN {
        let api = dynamic(&client, &namespace, kind);
        wait_for(
            &format!("{kind}/{name}"),
            TIMEOUT,
            async |seen: &mut String| {
                let found = api.get_opt(name).await?;
                *seen = format!("exists: {}", found.is_some());
                Ok(found.map(|_| ()))
            },
        )
        .await?;
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let made = wait_for(
        "the vtctld and vtgate Deployments, made by the operator's ServiceAccount",
        TIMEOUT,
        async |seen: &mut String| {
            let list = deployments
                .list(&ListParams::default().labels("planetscale.com/cluster=example"))
                .await?;
            let managers: Vec<(String, Vec<String>)> = list
                .items
                .iter()
                .map(|d| {
                    let by = d
                        .managed_fields()
                        .iter()
                        .filter_map(|f| f.manager.clone())
                        .collect();
                    (d.name_any(), by)
                })
                .collect();
            *seen = format!("{managers:?}");
            Ok((managers.len() >= 2).then_some(managers))
        },
    )
    .await?;
    for (name, by) in &made {
        ensure!(
            by.iter().any(|m| m.starts_with("vitess-operator")),
            "Deployment {name} was not written by the operator: managers {by:?}"
        );
    }
    let api = dynamic(&client, &namespace, "VitessCluster");
    api.delete("example", &Default::default()).await?;
    ns.delete(TIMEOUT).await?;
    std::fs::remove_dir_all(&overlay).ok();
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
