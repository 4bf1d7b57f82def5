//! Server-side apply of multi-document YAML, for any kind the API server knows
//! (built-in kinds, CRDs, and custom resources of CRDs applied earlier in the
//! same YAML).

use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use kube::{
    Api, Client,
    api::{DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::{self, ApiCapabilities, ApiResource, Scope},
};

use crate::wait::wait_for;

/// Field manager used by [`apply_yaml`], as `kubectl apply --server-side
/// --field-manager e2e-user` would.
pub const FIELD_MANAGER: &str = "e2e-user";

/// How long to wait for a kind to show up in discovery (a CRD applied just
/// before), and for an applied CRD to become Established.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Server-side applies every document of `yaml` (`---` separated; empty
/// documents are skipped) with field manager [`FIELD_MANAGER`], forcing
/// conflicts as a user re-applying their YAML would. Namespaced objects without
/// `metadata.namespace` go to `namespace`. After a CustomResourceDefinition is
/// applied, waits until it is Established so later documents may use it.
/// Returns the objects as the API server stored them, in order.
pub async fn apply_yaml(
    client: &Client,
    namespace: &str,
    yaml: &str,
) -> Result<Vec<DynamicObject>> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(yaml).context("parsing YAML documents")?;
    let mut applied = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let obj = apply_document(client, namespace, doc)
            .await
            .with_context(|| format!("applying YAML document #{}", index + 1))?;
        applied.push(obj);
    }
    Ok(applied)
}

async fn apply_document(
    client: &Client,
    namespace: &str,
    doc: serde_json::Value,
) -> Result<DynamicObject> {
    let obj: DynamicObject =
        serde_json::from_value(doc.clone()).context("document is not a Kubernetes object")?;
    let types = obj
        .types
        .as_ref()
        .ok_or_else(|| anyhow!("document has no apiVersion/kind"))?;
    let gvk = GroupVersionKind::try_from(types)
        .with_context(|| format!("bad apiVersion {:?}", types.api_version))?;
    let name = obj.metadata.name.clone().ok_or_else(|| {
        anyhow!(
            "{} has no metadata.name (required by server-side apply)",
            gvk.kind
        )
    })?;
    let (resource, caps) = resolve(client, &gvk).await?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            obj.metadata.namespace.as_deref().unwrap_or(namespace),
            &resource,
        ),
    };
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let stored = api
        .patch(&name, &params, &Patch::Apply(&doc))
        .await
        .with_context(|| format!("server-side apply of {} {name}", gvk.kind))?;
    if gvk.group == "apiextensions.k8s.io" && gvk.kind == "CustomResourceDefinition" {
        wait_established(&api, &name).await?;
    }
    Ok(stored)
}

/// Finds the resource for a kind, retrying while it is not (yet) discoverable.
async fn resolve(
    client: &Client,
    gvk: &GroupVersionKind,
) -> Result<(ApiResource, ApiCapabilities)> {
    let description = format!(
        "{}/{} {} to be served by the API server",
        gvk.group, gvk.version, gvk.kind
    );
    wait_for(
        &description,
        DISCOVERY_TIMEOUT,
        async |seen: &mut String| match discovery::pinned_kind(client, gvk).await {
            Ok(found) => Ok(Some(found)),
            Err(err) => {
                *seen = format!("discovery: {err}");
                Ok(None)
            }
        },
    )
    .await
}

async fn wait_established(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    let description = format!("CustomResourceDefinition {name} to be Established");
    wait_for(
        &description,
        DISCOVERY_TIMEOUT,
        async |seen: &mut String| {
            let crd = api.get(name).await?;
            let conditions = crd
                .data
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .cloned()
                .unwrap_or_default();
            *seen = format!(
                "conditions: {}",
                serde_json::Value::Array(conditions.clone())
            );
            let established = conditions.iter().any(|c| {
                c.get("type").and_then(|t| t.as_str()) == Some("Established")
                    && c.get("status").and_then(|s| s.as_str()) == Some("True")
            });
            Ok(established.then_some(()))
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn multi_document_yaml_parses_to_json_values() {
        let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: \"1\"\n---\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\nstringData:\n  on: \"yes\"\n";
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
        let docs: Vec<_> = docs.into_iter().filter(|d| !d.is_null()).collect();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["data"]["k"], "1");
        assert_eq!(docs[1]["kind"], "Secret");
        assert_eq!(docs[1]["stringData"]["on"], "yes");
    }

    #[test]
    fn yaml_numbers_and_booleans_keep_their_types() {
        let yaml = "spec:\n  replicas: 3\n  paused: false\n  ratio: 0.5\n";
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
        assert_eq!(docs[0]["spec"]["replicas"], 3);
        assert_eq!(docs[0]["spec"]["paused"], false);
        assert_eq!(docs[0]["spec"]["ratio"], 0.5);
    }
}
