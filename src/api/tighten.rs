//! Bounds added to the generated CRD schemas for values the API server would store and a
//! child object (or the operator's decoding) would refuse only later, when the spec is long
//! accepted: found by the generated corpus of bad clusters (`e2e/tests/corpus.rs`).
//!
//! - Every `int32` gets the int32 range: the API server does not check `format`, so
//!   `replicas: 2147483648` was stored, and a cluster the operator cannot decode is reported
//!   nowhere.
//! - Every compute resource amount (`requests`, `limits`) must be a quantity that is not
//!   negative: `cpu: -50m` or `memory: other` were stored and every Deployment, pod or CronJob
//!   made from them refused.
//! - `extraLabels` values must be label values (63 characters of `A-Z a-z 0-9 - _ .`).
//! - A VitessCluster's name is at most 63 characters: it is the `planetscale.com/cluster` label
//!   of every child.
//!
//! Being in the schema, each is also checked by `vitess-operator validate`.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    ValidationRule,
};

/// A Kubernetes quantity that is not negative (`0`, `500m`, `1.5Gi`, `1e3`).
pub const QUANTITY: &str =
    r"^\+?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$";

/// A label value: empty, or up to 63 of `A-Z a-z 0-9 - _ .` beginning and ending with a letter
/// or digit.
pub const LABEL_VALUE: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";

/// Adds the bounds to every version's schema of `crd`.
pub fn tighten(crd: &mut CustomResourceDefinition) {
    let cluster = crd.spec.names.kind == "VitessCluster";
    for version in &mut crd.spec.versions {
        let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        walk(schema, None);
        if cluster {
            schema
                .x_kubernetes_validations
                .get_or_insert_with(Vec::new)
                .push(ValidationRule {
                    rule: "size(self.metadata.name) <= 63".into(),
                    // No fieldPath: the schema has no `metadata` to point into.
                    message: Some(
                        "metadata.name: a VitessCluster's name is at most 63 characters: it is \
                         the planetscale.com/cluster label of every object made for it"
                            .into(),
                    ),
                    ..ValidationRule::default()
                });
        }
    }
}

/// Tightens `schema`, the property `name` of its parent if it is one, and everything below.
fn walk(schema: &mut JSONSchemaProps, name: Option<&str>) {
    if schema.format.as_deref() == Some("int32") {
        schema.minimum.get_or_insert(f64::from(i32::MIN));
        schema.maximum.get_or_insert(f64::from(i32::MAX));
    }
    match name {
        Some("requests" | "limits") => amounts(schema, |amount| {
            if amount.x_kubernetes_int_or_string == Some(true) && amount.pattern.is_none() {
                amount.pattern = Some(QUANTITY.into());
                amount.minimum = Some(0.0);
            }
        }),
        Some("extraLabels") => amounts(schema, |value| {
            value.pattern.get_or_insert_with(|| LABEL_VALUE.into());
            value.max_length.get_or_insert(63);
        }),
        _ => {}
    }
    for (key, child) in schema.properties.iter_mut().flat_map(BTreeMap::iter_mut) {
        walk(child, Some(key));
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => walk(item, None),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => {
            items.iter_mut().for_each(|item| walk(item, None));
        }
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = &mut schema.additional_properties {
        walk(value, None);
    }
    for branch in [&mut schema.any_of, &mut schema.one_of, &mut schema.all_of] {
        branch
            .iter_mut()
            .flatten()
            .for_each(|branch| walk(branch, name));
    }
}

/// Applies `tighten` to the value schema of a map (`additionalProperties`).
fn amounts(schema: &mut JSONSchemaProps, tighten: impl Fn(&mut JSONSchemaProps)) {
    if let Some(JSONSchemaPropsOrBool::Schema(value)) = &mut schema.additional_properties {
        tighten(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_and_label_values_match_what_kubernetes_takes() {
        let quantity = regex::Regex::new(QUANTITY).expect("regex");
        for ok in ["0", "1", "500m", "1.5Gi", "+2", "1e3", ".5", "10Ki"] {
            assert!(quantity.is_match(ok), "{ok}");
        }
        for bad in ["-50m", "-1", "other", "1.5GB", "", "1 Gi"] {
            assert!(!quantity.is_match(bad), "{bad}");
        }
        let label = regex::Regex::new(LABEL_VALUE).expect("regex");
        for ok in ["", "a", "team-a", "A_b.c9"] {
            assert!(label.is_match(ok), "{ok}");
        }
        for bad in ["ключ", "-a", "a-", "a b", "a\u{200b}"] {
            assert!(!label.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn every_crd_is_tightened() {
        let crds = crate::api::crds();
        let cluster = serde_json::to_value(&crds[0]).expect("json");
        let root = &cluster["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert_eq!(
            root["x-kubernetes-validations"][0]["rule"],
            "size(self.metadata.name) <= 63"
        );
        fn unbounded(value: &serde_json::Value, out: &mut usize) {
            match value {
                serde_json::Value::Object(map) => {
                    if map.get("format").and_then(|f| f.as_str()) == Some("int32")
                        && !(map.contains_key("maximum") && map.contains_key("minimum"))
                    {
                        *out += 1;
                    }
                    map.values().for_each(|v| unbounded(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| unbounded(v, out)),
                _ => {}
            }
        }
        for crd in &crds {
            let mut count = 0;
            unbounded(&serde_json::to_value(crd).expect("json"), &mut count);
            assert_eq!(count, 0, "unbounded int32 in {}", crd.spec.names.kind);
        }
        let replicas = &root["properties"]["spec"]["properties"]["cells"]["items"]["properties"]["gateway"]
            ["properties"]["replicas"];
        assert_eq!(replicas["maximum"], serde_json::json!(f64::from(i32::MAX)));
    }
}
