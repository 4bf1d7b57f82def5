//! Flag conformance: every command line the operator generates is run with the real binary it
//! names, long enough to parse its flags. The binaries are the ones the real node's images hold
//! (Vitess v0.24.3, etcd v3.5.17 and mysqld_exporter, built by `e2e/cluster up`); they run on
//! this machine, not in a pod, so this needs no node. An unknown, malformed or deprecated flag
//! fails the test, naming the file, the object, the container and what the binary said: when
//! Vitess renames a flag, this test says so before a user does.
//!
//! What is rendered: every example, and `fixtures/flags-maximal.yaml` (TLS to vtctld and vtgate,
//! static auth, backups to GCS and S3 with both engines, the first backup, schedules, an
//! external lockserver and datastore, the mysqld exporter).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;
use vitess_operator_e2e::{Operator, e2e_dir, in_ci, tool_path, workspace_dir};

/// How long one binary may take to parse its flags and print its help.
const PARSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Deprecated flags the operator passes on purpose, each with why. Any other deprecation fails.
const ACCEPTED_DEPRECATIONS: [(&str, &str); 2] = [
    (
        "--logtostderr",
        "the Go operator passes it to every Vitess server, so dropping it would change every pod \
         template a takeover adopts; Vitess v24 logs to stderr anyway. It has to go before the \
         Vitess release that removes it, and this test then fails with \"unknown flag\"",
    ),
    (
        "--alsologtostderr",
        "the Go operator passes it to vtadmin-api, for the same reason as --logtostderr",
    ),
];

/// vtadmin-web's command line: the vtadmin image's own entrypoint starting its nginx, as the
/// Go operator runs it; nginx's arguments, not flags the operator chooses.
const VTADMIN_WEB: [&str; 4] = ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"];

/// One command line of a rendered container (or of its exec probe).
#[derive(Debug, Clone)]
struct CommandLine {
    /// `file: Kind/name: container c` (and `(readiness probe)` for probes), for messages.
    origin: String,
    /// The container's name.
    container: String,
    /// The program as the pod names it (`/vt/bin/vttablet`) and its arguments, `$(VAR)`
    /// references expanded as Kubernetes expands them.
    argv: Vec<String>,
    /// The container's literal environment.
    env: BTreeMap<String, String>,
    /// Files the container mounts from Secrets the operator makes (path, content): a flag may
    /// read its file while it parses (vtadmin's `--cluster-config`), so the check gives it
    /// the file as rendered.
    files: Vec<(String, Vec<u8>)>,
}

/// The Secrets one input renders: name -> key -> content.
type Rendered = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// The files `container` of pod `spec` mounts from Secrets in `secrets`, at their paths.
fn mounted_files(spec: &Value, container: &Value, secrets: &Rendered) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for mount in container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(name), Some(dir)) = (
            mount.get("name").and_then(Value::as_str),
            mount.get("mountPath").and_then(Value::as_str),
        ) else {
            continue;
        };
        let volume = spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name));
        let Some(secret) = volume.and_then(|v| v.get("secret")) else {
            continue;
        };
        let Some(data) = secret
            .get("secretName")
            .and_then(Value::as_str)
            .and_then(|s| secrets.get(s))
        else {
            continue;
        };
        for item in secret
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(key), Some(path)) = (
                item.get("key").and_then(Value::as_str),
                item.get("path").and_then(Value::as_str),
            ) else {
                continue;
            };
            if let Some(content) = data.get(key) {
                out.push((format!("{dir}/{path}"), content.clone()));
            }
        }
    }
    out
}

/// How a program's flags are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// Append `--help`: the binary parses every flag before it prints help and exits 0; an
    /// unknown or malformed flag exits non-zero, saying which (cobra, pflag, kingpin, etcd).
    Help(PathBuf),
    /// A shell script (`bash -c SCRIPT`): `bash -n` checks that it parses.
    Script,
    /// A command line that must be exactly this (no binary of it is built here).
    Exactly(&'static [&'static str]),
}

/// The host binary that stands for `program` in the images, or why there is none.
fn check_for(program: &str) -> Result<Check, String> {
    let image_bin = |name: &str| tool_path(&format!("image/{name}"));
    let check = match program {
        "bash" | "/bin/bash" | "sh" | "/bin/sh" => return Ok(Check::Script),
        "/docker-entrypoint.sh" => return Ok(Check::Exactly(&VTADMIN_WEB)),
        "/usr/local/bin/etcd" | "etcd" => image_bin("etcd"),
        "/usr/local/bin/etcdctl" | "etcdctl" => image_bin("etcdctl"),
        "/bin/mysqld_exporter" | "mysqld_exporter" => image_bin("mysqld_exporter"),
        _ => match program.strip_prefix("/vt/bin/").or(match program {
            "vtctldclient" => Some("vtctldclient"),
            _ => None,
        }) {
            Some(vitess) => tool_path(vitess),
            None => {
                return Err(format!(
                    "no binary is known for program {program:?}: teach e2e/tests/flags.rs how to check it"
                ));
            }
        },
    };
    if check.is_file() {
        Ok(Check::Help(check))
    } else {
        Err(format!(
            "{} (for {program}) is not built; run `e2e/cluster up` (it builds the real node's binaries)",
            check.display()
        ))
    }
}

/// The files whose renderings are checked: every example and the maximal fixture.
fn inputs() -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace_dir().join("examples"))
        .context("reading examples/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    ensure!(files.len() >= 3, "examples/ lost its examples");
    files.push(e2e_dir().join("tests/fixtures/flags-maximal.yaml"));
    Ok(files)
}

/// `vitess-operator render -f FILE`, parsed into documents.
async fn render(file: &Path) -> Result<Vec<Value>> {
    let out = tokio::process::Command::new(Operator::binary())
        .arg("render")
        .arg("-f")
        .arg(file)
        .output()
        .await
        .context("running vitess-operator render (build it with `cargo build`)")?;
    ensure!(
        out.status.success(),
        "vitess-operator render -f {} failed ({}): {}",
        file.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // YAML 1.2 booleans, as render writes them: `on` or `no` stay strings.
    let options = serde_saphyr::options! { strict_booleans: true };
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(&String::from_utf8_lossy(&out.stdout), options)
            .context("parsing render's output")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// The Jobs the operator starts for each VitessBackupSchedule `docs` holds (made at due times,
/// so `render` cannot print them): built by `desired::schedule` for one due time, from the
/// VitessCluster of `file`.
fn scheduled_jobs(file: &Path, docs: &[Value]) -> Result<Vec<Value>> {
    use vitess_operator::api::{VitessBackupSchedule, VitessCluster, VitessShard};
    use vitess_operator::desired::schedule;
    let text = std::fs::read_to_string(file)?;
    let clusters: Vec<Value> = serde_saphyr::from_multiple(&text)?;
    let Some(cluster) = clusters.into_iter().find(|d| d["kind"] == "VitessCluster") else {
        return Ok(Vec::new());
    };
    let cluster: VitessCluster = serde_json::from_value(cluster)?;
    let due = "2026-12-07T02:30:00Z".parse()?;
    let mut jobs = Vec::new();
    for doc in docs.iter().filter(|d| d["kind"] == "VitessBackupSchedule") {
        let schedule: VitessBackupSchedule = serde_json::from_value(doc.clone())?;
        for target in schedule::targets(&cluster, &schedule.spec.template, &BTreeSet::new())? {
            // Both methods, whichever the schedule names: vtbackup from the shard's
            // VitessShard, as render prints it.
            let shard = docs
                .iter()
                .filter(|d| d["kind"] == "VitessShard")
                .filter(|d| {
                    d["metadata"]["labels"]["planetscale.com/keyspace"] == target.keyspace.as_str()
                })
                .filter_map(|d| serde_json::from_value::<VitessShard>(d.clone()).ok())
                .find(|s| s.spec.name == target.shard);
            let mut methods = vec![schedule::Method::Vtctldclient];
            methods.extend(shard.as_ref().map(schedule::Method::Vtbackup));
            for method in methods {
                let Some(job) = schedule::job(&cluster, &schedule, &target, due, method)? else {
                    continue;
                };
                let mut value = serde_json::to_value(job)?;
                value["kind"] = "Job".into();
                jobs.push(value);
            }
        }
    }
    Ok(jobs)
}

/// The pod spec of a rendered object, wherever its kind keeps it.
fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc.get("kind")?.as_str()? {
        "Pod" => doc.get("spec"),
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" | "ReplicaSet" => {
            doc.pointer("/spec/template/spec")
        }
        _ => None,
    }
}

/// `Kind/name` of a rendered object.
fn describe(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc.get("kind").and_then(Value::as_str).unwrap_or("?"),
        doc.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    )
}

/// What a `$(VAR)` from the downward API stands for in a pod.
fn downward_value(field: &str) -> String {
    match field {
        "status.podIP" | "status.hostIP" => "10.244.9.10".into(),
        "metadata.namespace" => "default".into(),
        _ => "placeholder".into(),
    }
}

/// The container's environment as Kubernetes gives it: literal values, and stand-ins for values
/// from the downward API (Secrets and ConfigMaps are left out: no flag takes them).
fn environment(container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = var.get("name").and_then(Value::as_str) else {
            continue;
        };
        if let Some(value) = var.get("value").and_then(Value::as_str) {
            env.insert(name.to_string(), value.to_string());
        } else if let Some(field) = var
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            env.insert(name.to_string(), downward_value(field));
        }
    }
    env
}

/// `$(VAR)` expanded from `env` as Kubernetes does (`$$` is a literal `$`; unknown references
/// stay as written).
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("$(")
            && let Some(end) = inner.find(')')
            && let Some(value) = env.get(&inner[..end])
        {
            out.push_str(value);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Every command line of one pod spec: each container's and init container's command and
/// arguments, and each exec probe.
fn command_lines(origin: &str, spec: &Value, secrets: &Rendered) -> Vec<CommandLine> {
    let mut lines = Vec::new();
    for list in ["initContainers", "containers"] {
        for container in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = container
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let env = environment(container);
            let files = mounted_files(spec, container, secrets);
            let mut argv = strings(container.get("command"));
            argv.extend(strings(container.get("args")));
            if !argv.is_empty() {
                lines.push(CommandLine {
                    origin: format!("{origin}: container {name}"),
                    container: name.clone(),
                    argv: argv.iter().map(|a| expand(a, &env)).collect(),
                    env: env.clone(),
                    files: files.clone(),
                });
            }
            for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                let argv = strings(container.pointer(&format!("/{probe}/exec/command")));
                if !argv.is_empty() {
                    lines.push(CommandLine {
                        origin: format!("{origin}: container {name} ({probe})"),
                        container: name.clone(),
                        argv,
                        env: env.clone(),
                        files: files.clone(),
                    });
                }
            }
        }
    }
    lines
}

/// Runs one command line's check; `Err` says what is wrong, naming where it came from.
async fn check(line: &CommandLine) -> Result<(), String> {
    let Some(program) = line.argv.first() else {
        return Err(format!("{}: empty command", line.origin));
    };
    let check = check_for(program).map_err(|e| format!("{}: {e}", line.origin))?;
    if let Check::Exactly(expected) = check {
        return if line.argv == expected[..] {
            Ok(())
        } else {
            Err(format!(
                "{}: {:?} is not the command line {expected:?}",
                line.origin, line.argv
            ))
        };
    }
    let scratch =
        std::env::temp_dir().join(format!("flags-{}", vitess_operator_e2e::unique_suffix()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    // The mounted files the operator renders, at their paths under the scratch directory.
    let mut argv = line.argv.clone();
    for (path, content) in &line.files {
        let local = scratch.join(path.trim_start_matches('/'));
        let written = local
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&local, content));
        written.map_err(|e| format!("{}: {e}", local.display()))?;
        for arg in argv.iter_mut() {
            *arg = arg.replace(path.as_str(), &local.display().to_string());
        }
    }
    let mut command = match &check {
        Check::Exactly(_) => unreachable!("answered before the scratch directory"),
        Check::Script => {
            let script = match line.argv.get(1..) {
                Some([flag, script, ..]) if flag == "-c" => script.clone(),
                _ => {
                    return Err(format!(
                        "{}: a shell that is not `-c SCRIPT`: {:?}",
                        line.origin, line.argv
                    ));
                }
            };
            let mut c = tokio::process::Command::new("bash");
            c.arg("-n").arg("-c").arg(script);
            c
        }
        Check::Help(binary) => {
            let mut c = tokio::process::Command::new(binary);
            c.args(&argv[1..]).arg("--help");
            c
        }
    };
    command
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", &scratch)
        .envs(&line.env)
        .current_dir(&scratch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(PARSE_TIMEOUT, command.output()).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let output = output
        .map_err(|_| {
            format!(
                "{}: {program} did not exit within {PARSE_TIMEOUT:?} of --help",
                line.origin
            )
        })?
        .map_err(|e| format!("{}: cannot run the check of {program}: {e}", line.origin))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    if !output.status.success() {
        return Err(format!(
            "{}: {program} refused its command line ({}): {}",
            line.origin,
            output.status,
            complaint(&text)
        ));
    }
    let accepted = |line: &str| {
        ACCEPTED_DEPRECATIONS
            .iter()
            .any(|(flag, _)| line.contains(&format!("Flag {flag} has been deprecated")))
    };
    if let Some(deprecated) = text
        .lines()
        .find(|l| l.contains("has been deprecated") && !accepted(l))
    {
        return Err(format!(
            "{}: {program} says a flag is deprecated: {}",
            line.origin,
            message_of(deprecated)
        ));
    }
    Ok(())
}

/// The line of a failed parse that says what is wrong (not the usage text after it).
fn complaint(text: &str) -> String {
    const SIGNS: [&str; 8] = [
        "unknown flag",
        "unknown shorthand",
        "invalid argument",
        "flag needs an argument",
        "flag provided but not defined",
        "unknown long flag",
        "error",
        "Error",
    ];
    text.lines()
        .find(|l| SIGNS.iter().any(|s| l.contains(s)))
        .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
        .map(message_of)
        .unwrap_or_else(|| "(no output)".into())
}

/// The `msg` of a JSON log line (Vitess v24 logs JSON), else the line itself.
fn message_of(line: &str) -> String {
    serde_json::from_str::<Value>(line.trim())
        .ok()
        .and_then(|v| v.get("msg").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| line.trim().to_string())
}

/// Every command line of every rendered input, with the set of containers seen.
async fn all_command_lines() -> Result<Vec<CommandLine>> {
    let mut lines = Vec::new();
    for file in inputs()? {
        let shown = file
            .strip_prefix(workspace_dir())
            .unwrap_or(&file)
            .display()
            .to_string();
        let mut docs = render(&file).await?;
        docs.extend(scheduled_jobs(&file, &docs)?);
        let mut secrets = Rendered::new();
        for doc in docs.iter().filter(|d| d["kind"] == "Secret") {
            let data: BTreeMap<String, k8s_openapi::ByteString> =
                serde_json::from_value(doc["data"].clone()).unwrap_or_default();
            secrets.insert(
                doc.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                data.into_iter().map(|(k, v)| (k, v.0)).collect(),
            );
        }
        for doc in &docs {
            if let Some(spec) = pod_spec(doc) {
                lines.extend(command_lines(
                    &format!("{shown}: {}", describe(doc)),
                    spec,
                    &secrets,
                ));
            }
        }
    }
    Ok(lines)
}

/// The binaries must be there; a missing one fails under CI and skips a developer's run.
fn binaries_built(test: &str) -> Result<bool> {
    let probe = tool_path("vttablet");
    let image = tool_path("image/etcd");
    if probe.is_file() && image.is_file() {
        return Ok(true);
    }
    let message = format!(
        "{test} needs the Vitess, etcd and mysqld_exporter binaries of the real node's images ({} and {}); run `e2e/cluster up`",
        probe.display(),
        image.display()
    );
    if in_ci() {
        bail!(message);
    }
    eprintln!("skipping: {message}");
    Ok(false)
}

#[tokio::test]
async fn every_generated_command_line_is_accepted_by_the_binary_it_names() -> Result<()> {
    if !binaries_built("every_generated_command_line_is_accepted_by_the_binary_it_names")? {
        return Ok(());
    }
    let lines = all_command_lines().await?;
    let mut failures = Vec::new();
    for line in &lines {
        if let Err(failure) = check(line).await {
            failures.push(failure);
        }
    }
    ensure!(
        failures.is_empty(),
        "{} of {} command lines were refused:\n{}",
        failures.len(),
        lines.len(),
        failures.join("\n")
    );
    // Every kind of container the operator makes was among them: a builder whose output the
    // inputs stop covering makes this test say so instead of passing on less.
    let seen: BTreeSet<&str> = lines.iter().map(|l| l.container.as_str()).collect();
    let expected = [
        "etcd",
        "vtctld",
        "vtgate",
        "init-vt-root",
        "vttablet",
        "mysqld",
        "mysqld-exporter",
        "vtbackup",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|c| !seen.contains(c))
        .collect();
    ensure!(
        missing.is_empty(),
        "no rendered container named {missing:?}; containers seen: {seen:?}"
    );
    for (container, method) in [("vtctldclient", "vtctldclient"), ("vtbackup", "vtbackup")] {
        ensure!(
            lines
                .iter()
                .any(|l| l.origin.contains(": Job/") && l.container == container),
            "no scheduled backup Job of method {method} was built"
        );
    }
    eprintln!(
        "{} command lines of {} containers accepted",
        lines.len(),
        seen.len()
    );
    Ok(())
}

/// The check can fail: a flag the binary does not have is reported with the object, the
/// container and the flag.
#[tokio::test]
async fn an_unknown_flag_is_reported_with_its_object_container_and_flag() -> Result<()> {
    if !binaries_built("an_unknown_flag_is_reported_with_its_object_container_and_flag")? {
        return Ok(());
    }
    let pod = serde_json::json!({
        "containers": [{
            "name": "vttablet",
            "command": ["/vt/bin/vttablet"],
            "args": ["--tablet-path=zone1-1", "--tablet-hostname=$(POD_IP)", "--no-such-flag=1"],
            "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        }, {
            "name": "vtgate",
            "command": ["/vt/bin/vtgate"],
            "args": ["--health-check-interval=5x"],
        }]
    });
    let lines = command_lines("test.yaml: Pod/bad", &pod, &Rendered::new());
    assert_eq!(lines[0].argv[2], "--tablet-hostname=10.244.9.10");
    let unknown = check(&lines[0]).await.expect_err("an unknown flag passed");
    assert!(
        unknown.contains("Pod/bad: container vttablet") && unknown.contains("--no-such-flag"),
        "{unknown}"
    );
    let malformed = check(&lines[1]).await.expect_err("a malformed flag passed");
    assert!(
        malformed.contains("container vtgate") && malformed.contains("--health-check-interval"),
        "{malformed}"
    );
    let good = CommandLine {
        argv: vec!["/vt/bin/vtgate".into(), "--port=15000".into()],
        ..lines[1].clone()
    };
    check(&good).await.map_err(anyhow::Error::msg)?;
    Ok(())
}

#[test]
fn expands_references_as_kubernetes_does() {
    let env = BTreeMap::from([("POD_IP".to_string(), "10.0.0.1".to_string())]);
    assert_eq!(expand("--h=$(POD_IP):1", &env), "--h=10.0.0.1:1");
    assert_eq!(expand("$$(POD_IP)", &env), "$(POD_IP)");
    assert_eq!(expand("$(NOPE) $", &env), "$(NOPE) $");
}
