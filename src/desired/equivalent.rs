//! Whether a pod spec someone else wrote (the Go operator, before a takeover) already runs what
//! ours would, so that the pod is adopted as it is instead of being drained and replaced.
//!
//! Pure: both specs are compared as JSON after the rewrites that do not change what runs:
//! - every command-line token `--name=value` of a container (command and args together) is
//!   normalised: `_` in the name becomes `-` (Vitess' flag parser treats both spellings as the
//!   same flag), a tablet type `MASTER` becomes `PRIMARY` (Vitess' old name for it), and the
//!   flags are compared as a set after the program's own words;
//! - nulls, empty objects and empty lists are dropped (`lifecycle: {}` is no lifecycle);
//! - fields ours leaves unset may hold anything (the API server's defaults, another writer's
//!   choices), and lists of containers, env, volumes and ports are matched by name, mounts by
//!   path, with the API server's service-account token volume and mount ignored;
//! - the pod's `securityContext` is not compared: the Go operator sets none, ours sets the
//!   mysql user and group; a pod that has run without them keeps running without them until
//!   the spec changes (README, "Taking over a cluster the Go operator made");
//! - init containers' command and args are not compared (their name, image, mounts and
//!   resources are): an init container of a running pod has done its work and will not run
//!   again in it, and ours do the same work as the Go operator's (the same files in the same
//!   places) in scripts of our own wording.
//!
//! A pod that is already running ([`running_pod`]) is compared on what it runs, not on how it
//! was placed: its scheduling-only fields (`affinity`, `topologySpreadConstraints`; both act
//! at scheduling only) are not compared, and a host named relative to the pod's namespace in a
//! flag value (`member.peer:2380`) is the one named in full (`member.peer.<ns>.svc:2380`), as
//! the pod's DNS search path resolves it.
//!
//! Anything else that differs is a [`Difference`], named by path, so the log says why a pod
//! was not adopted.
//!
//! Long (about 300 lines of rules, the rest their tests) because the rules act together on
//! one JSON walk: split, each would need the others' normalisation to be tested.

use serde_json::{Map, Value};

/// A place where the observed spec does not run what the desired one would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {desired} wanted, {observed} found")]
pub struct Difference {
    pub path: String,
    pub desired: String,
    pub observed: String,
}

/// Pod-spec fields that are not compared (see the module documentation).
const IGNORED: &[&str] = &["securityContext"];

/// The prefix of the volume (and mount) the API server adds for the service-account token.
const TOKEN_VOLUME: &str = "kube-api-access-";

/// Lists whose items are matched by a key rather than by position, and the key: mounts by
/// path (one volume may be mounted several times, at sub-paths), the others by name.
const KEYED_LISTS: &[(&str, &str)] = &[
    ("containers", "name"),
    ("initContainers", "name"),
    ("env", "name"),
    ("volumes", "name"),
    ("volumeMounts", "mountPath"),
    ("ports", "name"),
];

/// Empty when `observed` runs what `desired` would (see the module documentation for the
/// rules); else every difference, by path.
pub fn pod_spec(observed: &Value, desired: &Value) -> Vec<Difference> {
    compare(observed.clone(), desired.clone())
}

/// Pod-spec fields that act only when a pod is scheduled.
const SCHEDULING_ONLY: &[&str] = &["affinity", "topologySpreadConstraints"];

/// [`pod_spec`] for a pod already running in `namespace`: scheduling-only fields are not
/// compared, and flag values name hosts of the namespace in full on both sides.
pub fn running_pod(observed: &Value, desired: &Value, namespace: &str) -> Vec<Difference> {
    let (mut observed, mut desired) = (observed.clone(), desired.clone());
    for spec in [&mut observed, &mut desired] {
        if let Some(map) = spec.as_object_mut() {
            for field in SCHEDULING_ONLY {
                map.remove(*field);
            }
        }
        full_hosts(spec, namespace);
    }
    compare(observed, desired)
}

/// Rewrites every `scheme://pod.service:port` in containers' command lines to
/// `scheme://pod.service.<namespace>.svc:port` (and `...svc.cluster.local` to `...svc`), so
/// both spellings compare equal. (A one-dot host could also be `service.namespace`; both sides
/// are rewritten alike, so only that name against its spelled-out pod name would be confused.)
fn full_hosts(spec: &mut Value, namespace: &str) {
    let long = format!(".{namespace}.svc.cluster.local:");
    let full = format!(".{namespace}.svc");
    for list in ["containers", "initContainers"] {
        let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            for key in ["command", "args"] {
                let words = container.get_mut(key).and_then(Value::as_array_mut);
                for word in words.into_iter().flatten() {
                    if let Some(text) = word.as_str() {
                        let text = text.replace(&long, &format!("{full}:"));
                        *word = Value::String(relative_hosts_in_full(&text, &full));
                    }
                }
            }
        }
    }
}

/// `http://a.b:2380,c=http://d.e.ns.svc:2379` -> `http://a.b.ns.svc:2380,c=http://d.e.ns.svc:2379`
/// (`suffix` is `.ns.svc`): every URL host with exactly one dot, followed by a port, gets it.
fn relative_hosts_in_full(text: &str, suffix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find([':', '/', ',']).unwrap_or(after.len());
        let host = &after[..end];
        out.push_str(host);
        if host.matches('.').count() == 1 && after[end..].starts_with(':') {
            out.push_str(suffix);
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The comparison of two specs, after the rewrites of the module documentation.
fn compare(mut observed: Value, mut desired: Value) -> Vec<Difference> {
    for spec in [&mut observed, &mut desired] {
        if let Some(map) = spec.as_object_mut() {
            for field in IGNORED {
                map.remove(*field);
            }
            let init = map.get_mut("initContainers").and_then(Value::as_array_mut);
            for container in init.into_iter().flatten().filter_map(Value::as_object_mut) {
                container.remove("command");
                container.remove("args");
            }
        }
        normalise(spec);
    }
    let mut out = Vec::new();
    covered("spec", &observed, &desired, &mut out);
    out
}

/// The differences as one line for a log or an Event.
pub fn describe(differences: &[Difference]) -> String {
    differences
        .iter()
        .map(Difference::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Rewrites `value` in place: command lines normalised, empty values dropped.
fn normalise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("image") {
                command_line(map);
            }
            for item in map.values_mut() {
                normalise(item);
            }
            map.retain(|_, v| !empty(v));
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                normalise(item);
            }
            items.retain(|v| !empty(v));
        }
        _ => {}
    }
}

fn empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// A container's command and args as one normalised line: the program's words under
/// `command`, the flags (sorted) under `flags` (args removed).
fn command_line(container: &mut Map<String, Value>) {
    let words: Vec<String> = ["command", "args"]
        .iter()
        .filter_map(|key| container.remove(*key))
        .filter_map(|v| match v {
            Value::Array(items) => Some(items),
            _ => None,
        })
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let (flags, program): (Vec<String>, Vec<String>) =
        words.into_iter().partition(|w| w.starts_with("--"));
    let mut flags: Vec<String> = flags.iter().map(|f| normal_flag(f)).collect();
    flags.sort();
    let strings = |items: Vec<String>| Value::Array(items.into_iter().map(Value::String).collect());
    container.insert("command".into(), strings(program));
    container.insert(FLAGS.into(), strings(flags));
}

/// Where [`command_line`] puts a container's flags.
const FLAGS: &str = "flags";

/// `--name_x=MASTER,REPLICA` -> `--name-x=PRIMARY,REPLICA`.
fn normal_flag(flag: &str) -> String {
    let (name, value) = match flag.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (flag, None),
    };
    let name = format!("--{}", name.trim_start_matches('-').replace('_', "-"));
    match value {
        None => name,
        Some(value) => {
            let value: Vec<&str> = value
                .split(',')
                .map(|v| if v == "MASTER" { "PRIMARY" } else { v })
                .collect();
            format!("{name}={}", value.join(","))
        }
    }
}

fn difference(path: &str, desired: impl ToString, observed: impl ToString) -> Difference {
    Difference {
        path: path.into(),
        desired: desired.to_string(),
        observed: observed.to_string(),
    }
}

/// Pushes onto `out` every place where a field of `desired` is not in `observed` with an equal
/// value (lists of named items matched by name, flags as sets, other lists item by item).
fn covered(path: &str, observed: &Value, desired: &Value, out: &mut Vec<Difference>) {
    match (observed, desired) {
        (Value::Object(seen), Value::Object(want)) => {
            for (key, wanted) in want {
                let here = format!("{path}.{key}");
                let found = seen.get(key).unwrap_or(&Value::Null);
                let by = KEYED_LISTS
                    .iter()
                    .find(|(list, _)| list == key)
                    .map(|l| l.1);
                match (key.as_str(), by, found, wanted) {
                    (FLAGS, _, Value::Array(found), Value::Array(wanted)) => {
                        flags(&here, found, wanted, out)
                    }
                    (_, Some(by), Value::Array(found), Value::Array(wanted)) => {
                        keyed(&here, by, found, wanted, out)
                    }
                    _ => covered(&here, found, wanted, out),
                }
            }
        }
        (Value::Array(seen), Value::Array(want)) if seen.len() == want.len() => {
            for (i, (s, w)) in seen.iter().zip(want).enumerate() {
                covered(&format!("{path}[{i}]"), s, w, out);
            }
        }
        _ if observed == desired => {}
        _ => out.push(difference(path, desired, observed)),
    }
}

/// Flags: the same set on both sides; the difference names the flags only one side has.
fn flags(path: &str, observed: &[Value], desired: &[Value], out: &mut Vec<Difference>) {
    let only = |a: &[Value], b: &[Value]| -> Vec<String> {
        a.iter()
            .filter(|v| !b.contains(v))
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let (missing, extra) = (only(desired, observed), only(observed, desired));
    if !missing.is_empty() || !extra.is_empty() {
        out.push(difference(
            path,
            format!("{missing:?}"),
            format!("{extra:?} instead"),
        ));
    }
}

/// Keyed items: the same keys on both sides (the token volume aside), each item covered.
fn keyed(path: &str, by: &str, observed: &[Value], desired: &[Value], out: &mut Vec<Difference>) {
    let name = |v: &Value| v[by].as_str().unwrap_or_default().to_string();
    let names = |items: &[Value]| -> Vec<String> {
        let mut names: Vec<String> = items
            .iter()
            .filter(|v| {
                !v["name"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(TOKEN_VOLUME)
            })
            .map(name)
            .collect();
        names.sort();
        names
    };
    let (seen, want) = (names(observed), names(desired));
    if seen != want {
        out.push(difference(
            &format!("{path} ({by}s)"),
            format!("{want:?}"),
            format!("{seen:?}"),
        ));
    }
    for wanted in desired {
        let wanted_name = name(wanted);
        if let Some(found) = observed.iter().find(|o| name(o) == wanted_name) {
            covered(&format!("{path}[{wanted_name}]"), found, wanted, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tablet(args: Value) -> Value {
        json!({
            "containers": [{
                "name": "vttablet",
                "image": "vitess/lite:v24.0.3",
                "command": ["/vt/bin/vttablet"],
                "args": args,
                "lifecycle": {},
                "volumeMounts": [
                    {"name": "vt-root", "mountPath": "/vt/socket", "subPath": "socket"},
                    {"name": "vt-root", "mountPath": "/vt/config", "subPath": "config"},
                ],
            }],
            "volumes": [{"name": "vt-root", "emptyDir": {}}],
            "securityContext": {"fsGroup": 999},
        })
    }

    #[test]
    fn underscored_flags_in_another_order_and_master_are_the_same_pod() {
        let ours = tablet(json!([
            "--tablet-types-to-wait=PRIMARY,REPLICA",
            "--port=15000"
        ]));
        let go = tablet(json!([
            "--port=15000",
            "--tablet_types_to_wait=MASTER,REPLICA"
        ]));
        assert_eq!(pod_spec(&go, &ours), vec![]);
    }

    #[test]
    fn api_defaults_and_the_token_volume_do_not_count() {
        let ours = tablet(json!(["--port=15000"]));
        let mut seen = tablet(json!(["--port=15000"]));
        seen["dnsPolicy"] = json!("ClusterFirst");
        seen["containers"][0]["terminationMessagePath"] = json!("/dev/termination-log");
        seen["containers"][0]["volumeMounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "kube-api-access-x1", "mountPath": "/var/run/secrets"}));
        seen["volumes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "kube-api-access-x1", "projected": {}}));
        seen.as_object_mut().unwrap().remove("securityContext");
        assert_eq!(pod_spec(&seen, &ours), vec![]);
    }

    #[test]
    fn a_missing_or_extra_flag_a_changed_image_or_another_volume_is_a_difference() {
        let ours = tablet(json!(["--port=15000", "--enable-semi-sync=true"]));
        let fewer = tablet(json!(["--port=15000"]));
        let found = pod_spec(&fewer, &ours);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "spec.containers[vttablet].flags");
        assert_eq!(found[0].desired, r#"["--enable-semi-sync=true"]"#);

        let more = tablet(json!(["--port=15000", "--enable-semi-sync=true", "--x=1"]));
        assert_eq!(pod_spec(&more, &ours)[0].observed, r#"["--x=1"] instead"#);

        let mut image = ours.clone();
        image["containers"][0]["image"] = json!("vitess/lite:v23.0.0");
        let found = pod_spec(&image, &ours);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "spec.containers[vttablet].image");

        let mut volume = ours.clone();
        volume["volumes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "extra", "emptyDir": {}}));
        let found = pod_spec(&volume, &ours);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "spec.volumes (names)");

        let mut mount = ours.clone();
        mount["containers"][0]["volumeMounts"] = json!([
            {"name": "vt-root", "mountPath": "/vt/socket", "subPath": "socket"},
        ]);
        let mut other = ours.clone();
        other["containers"][0]["volumeMounts"] = json!([
            {"name": "vt-root", "mountPath": "/vt/config", "subPath": "config"},
        ]);
        let found = pod_spec(&other, &mount);
        assert_eq!(
            found[0].path,
            "spec.containers[vttablet].volumeMounts (mountPaths)"
        );
    }

    #[test]
    fn an_init_script_worded_otherwise_is_the_same_pod_but_another_init_image_is_not() {
        let with_init = |script: &str, image: &str| {
            let mut pod = tablet(json!(["--port=15000"]));
            pod["initContainers"] = json!([{
                "name": "init-vt-root",
                "image": image,
                "command": ["bash", "-c"],
                "args": [script],
                "volumeMounts": [{"name": "vt-root", "mountPath": "/mnt/vt"}],
            }]);
            pod
        };
        let ours = with_init(
            "cp -f /vt/bin/mysqlctld /mnt/vt/bin/",
            "vitess/lite:v24.0.3",
        );
        let go = with_init(
            "cp --no-clobber /vt/bin/mysqlctld /mnt/vt/bin/",
            "vitess/lite:v24.0.3",
        );
        assert_eq!(pod_spec(&go, &ours), vec![]);

        let older = with_init(
            "cp -f /vt/bin/mysqlctld /mnt/vt/bin/",
            "vitess/lite:v23.0.0",
        );
        let found = pod_spec(&older, &ours);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].path, "spec.initContainers[init-vt-root].image");
    }

    #[test]
    fn a_running_pod_is_compared_without_its_placement_and_with_hosts_in_full() {
        let member = |urls: &str, zone_key: &str| {
            json!({
                "containers": [{
                    "name": "etcd",
                    "image": "quay.io/coreos/etcd:v3.5.17",
                    "command": ["etcd"],
                    "args": [format!("--initial-cluster={urls}"), "--name=m-1"],
                }],
                "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "podAffinityTerm": {"topologyKey": zone_key}},
                ]}},
            })
        };
        let go = member(
            "m-1=http://m-1.peer:2380,m-2=http://m-2.peer:2380",
            "failure-domain.beta.kubernetes.io/zone",
        );
        let ours = member(
            "m-1=http://m-1.peer.ns.svc:2380,m-2=http://m-2.peer.ns.svc.cluster.local:2380",
            "topology.kubernetes.io/zone",
        );
        assert_eq!(running_pod(&go, &ours, "ns"), vec![]);
        // A template (pods still to be scheduled) is compared on both.
        assert_eq!(pod_spec(&go, &ours).len(), 2, "{:?}", pod_spec(&go, &ours));
        // Another namespace's name, or another member, is another host.
        assert_eq!(running_pod(&go, &ours, "other").len(), 1);
        let elsewhere = member(
            "m-1=http://m-9.peer:2380,m-2=http://m-2.peer:2380",
            "topology.kubernetes.io/zone",
        );
        assert_eq!(running_pod(&elsewhere, &ours, "ns").len(), 1);
        assert_eq!(
            relative_hosts_in_full("http://10.0.0.1:2379,http://localhost:2379", ".ns.svc"),
            "http://10.0.0.1:2379,http://localhost:2379"
        );
    }

    #[test]
    fn flag_values_keep_their_case_and_only_names_are_respelled() {
        assert_eq!(
            normal_flag("--init_db_name_override=my_db"),
            "--init-db-name-override=my_db"
        );
        assert_eq!(
            normal_flag("--tablet_types_to_wait=MASTER"),
            "--tablet-types-to-wait=PRIMARY"
        );
        assert_eq!(normal_flag("--enable_semi_sync"), "--enable-semi-sync");
    }
}
