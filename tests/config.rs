//! `config/` (the kustomize install) and `charts/vitess-operator/`, read offline: the CRD
//! copies match `crds/`, and the Deployment has what running in production needs. The
//! server-side dry runs and `helm lint`/`template` are in `e2e/tests/install.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect()
}

/// kustomize cannot load `crds/` from `config/`, so `config/crd/` holds copies (`make crds`
/// writes both); they must be identical, and the kustomization must list every one.
#[test]
fn config_crds_are_the_committed_crds() {
    let crds = root().join("crds");
    let copies = root().join("config/crd");
    let names = yaml_files(&crds);
    assert_eq!(
        names,
        yaml_files(&copies),
        "config/crd/ and crds/ hold different files; run `make crds`"
    );
    for name in &names {
        let a = std::fs::read_to_string(crds.join(name)).unwrap();
        let b = std::fs::read_to_string(copies.join(name)).unwrap();
        assert!(
            a == b,
            "config/crd/{name} differs from crds/{name}; run `make crds`"
        );
    }
    let kustomization = std::fs::read_to_string(copies.join("kustomization.yaml")).unwrap();
    let listed: BTreeSet<String> = kustomization
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(str::to_string)
        .collect();
    assert_eq!(listed, names, "config/crd/kustomization.yaml resources");
}

/// The chart installs the same admission policy as `kubectl apply -k config/`: its template is
/// `config/admission/policy.yaml` between the switch's lines.
#[test]
fn the_chart_ships_the_config_admission_policy() {
    let policy = std::fs::read_to_string(root().join("config/admission/policy.yaml")).unwrap();
    let template = std::fs::read_to_string(
        root().join("charts/vitess-operator/templates/admissionpolicy.yaml"),
    )
    .unwrap();
    let inner: Vec<&str> = template
        .lines()
        .skip_while(|l| !l.contains(".Values.admissionPolicy.enabled"))
        .skip(1)
        .take_while(|l| !l.contains("{{- end }}"))
        .collect();
    assert_eq!(
        inner.join("\n") + "\n",
        policy,
        "charts/vitess-operator/templates/admissionpolicy.yaml differs from \
         config/admission/policy.yaml"
    );
    let kustomization = std::fs::read_to_string(root().join("config/kustomization.yaml")).unwrap();
    assert!(
        kustomization.contains("- admission/policy.yaml"),
        "config/kustomization.yaml does not install the admission policy"
    );
}

#[test]
fn the_deployment_runs_hardened_with_probes_and_leader_election() {
    let text = std::fs::read_to_string(root().join("config/manager/deployment.yaml")).unwrap();
    let deployment: Deployment = serde_saphyr::from_str(&text).unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("vitess-operator"));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("vitess-operator-control-plane")
    );
    let pod_security = pod.security_context.unwrap();
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(65532));
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.unwrap().drop.unwrap(),
        vec!["ALL".to_string()]
    );
    let args = container.args.clone().unwrap();
    for arg in ["run", "--leader-elect", "--namespace=$(POD_NAMESPACE)"] {
        assert!(args.iter().any(|a| a == arg), "{arg} missing from {args:?}");
    }
    let env = container.env.clone().unwrap();
    let from_field = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from.clone())
            .and_then(|v| v.field_ref)
            .map(|f| f.field_path)
    };
    assert_eq!(
        from_field("POD_NAMESPACE").as_deref(),
        Some("metadata.namespace")
    );
    assert_eq!(from_field("POD_NAME").as_deref(), Some("metadata.name"));
    let path = |probe: Option<k8s_openapi::api::core::v1::Probe>| {
        probe.and_then(|p| p.http_get).and_then(|h| h.path)
    };
    assert_eq!(
        path(container.liveness_probe.clone()).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        path(container.readiness_probe.clone()).as_deref(),
        Some("/readyz")
    );
    let resources = container.resources.clone().unwrap();
    assert!(resources.requests.is_some() && resources.limits.is_some());
}
