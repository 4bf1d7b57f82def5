//! Checks a JSON value against a CRD's structural OpenAPI schema the way the API server does
//! with strict field validation: types, required fields, enums, bounds, lengths, patterns,
//! unknown fields and duplicate keys in map-like lists. CEL rules are checked elsewhere.

use std::collections::HashSet;

use regex::Regex;
use serde_json::Value;

/// One place where a value does not fit its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Field path, e.g. `spec.cells[0].name`.
    pub path: String,
    /// What is wrong, for people.
    pub message: String,
}

/// Checks `value` against `schema`, appending every problem found.
pub fn check(schema: &Value, value: &Value, path: &str, out: &mut Vec<Issue>) {
    let mut issue = |message: String| {
        out.push(Issue {
            path: path.to_string(),
            message,
        })
    };
    // The API server keeps a null where the schema says nullable, puts the default in its
    // place where there is one (see [`defaulted`]), and refuses it anywhere else.
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("default").is_none() {
            issue(match schema.get("type").and_then(Value::as_str) {
                Some(expected) => format!("must be {}, not null", article(expected)),
                None => "must not be null".to_string(),
            });
        }
        return;
    }
    // An int-or-string (a quantity) is either; its pattern then checks a string, its minimum
    // an integer.
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if int_or_string && !(value.is_string() || is_integer(value)) {
        issue(format!(
            "must be an integer or a string, not {}",
            kind_of(value)
        ));
        return;
    }
    if let Some(expected) = schema.get("type").and_then(Value::as_str) {
        let fits = match expected {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => is_integer(value),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !fits {
            issue(format!(
                "must be {}, not {}",
                article(expected),
                kind_of(value)
            ));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        issue(format!(
            "unsupported value {value}: supported values are {}",
            list.join(", ")
        ));
    }
    match value {
        Value::String(text) => check_string(schema, text, &mut issue),
        Value::Number(_) => check_number(schema, value, &mut issue),
        Value::Array(items) => check_array(schema, items, path, out),
        Value::Object(_) => check_object(schema, value, path, out),
        _ => {}
    }
}

fn check_string(schema: &Value, text: &str, issue: &mut impl FnMut(String)) {
    let len = text.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        issue(if min == 1 {
            "must not be empty".to_string()
        } else {
            format!("must be at least {min} characters long")
        });
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        issue(format!("must be at most {max} characters long, not {len}"));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match Regex::new(pattern) {
            Ok(re) if !re.is_match(text) => {
                issue(format!("{text:?} does not match the pattern {pattern}"))
            }
            Ok(_) => {}
            Err(err) => issue(format!("schema pattern {pattern} is invalid: {err}")),
        }
    }
}

fn check_number(schema: &Value, value: &Value, issue: &mut impl FnMut(String)) {
    let Some(number) = value.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && number < min
    {
        issue(format!("must be at least {min}, not {value}"));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && number > max
    {
        issue(format!("must be at most {max}, not {value}"));
    }
}

fn check_array(schema: &Value, items: &[Value], path: &str, out: &mut Vec<Issue>) {
    let count = items.len() as u64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && count < min
    {
        out.push(Issue {
            path: path.to_string(),
            message: format!("must have at least {min} item(s), not {count}"),
        });
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && count > max
    {
        out.push(Issue {
            path: path.to_string(),
            message: format!("must have at most {max} item(s), not {count}"),
        });
    }
    let item_schema = schema.get("items");
    if let Some(item_schema) = item_schema {
        for (index, item) in items.iter().enumerate() {
            check(item_schema, item, &format!("{path}[{index}]"), out);
        }
    }
    check_list_keys(schema, item_schema, items, path, out);
}

/// `x-kubernetes-list-type: map` lists may not repeat a key; `set` lists may not repeat items.
fn check_list_keys(
    schema: &Value,
    item_schema: Option<&Value>,
    items: &[Value],
    path: &str,
    out: &mut Vec<Issue>,
) {
    let list_type = schema.get("x-kubernetes-list-type").and_then(Value::as_str);
    let key_names: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|keys| keys.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let key_of = |item: &Value| -> Value {
        match list_type {
            Some("map") => Value::Array(
                key_names
                    .iter()
                    .map(|name| {
                        item.get(*name)
                            .cloned()
                            .or_else(|| {
                                item_schema
                                    .and_then(|s| s["properties"][*name].get("default").cloned())
                            })
                            .unwrap_or(Value::Null)
                    })
                    .collect(),
            ),
            _ => item.clone(),
        }
    };
    if !matches!(list_type, Some("map") | Some("set")) {
        return;
    }
    let mut seen: Vec<(Value, usize)> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let key = key_of(item);
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            let shown = if key_names.len() == 1 {
                format!("{} {}", key_names[0], key[0])
            } else if list_type == Some("map") {
                let parts: Vec<String> = key_names
                    .iter()
                    .zip(key.as_array().into_iter().flatten())
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                parts.join(", ")
            } else {
                key.to_string()
            };
            out.push(Issue {
                path: format!("{path}[{index}]"),
                message: format!("duplicate entry ({shown}): {path}[{first}] has it already"),
            });
        } else {
            seen.push((key, index));
        }
    }
}

fn check_object(schema: &Value, value: &Value, path: &str, out: &mut Vec<Issue>) {
    let Some(fields) = value.as_object() else {
        return;
    };
    let join = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if fields.get(required).is_none() {
            out.push(Issue {
                path: join(required),
                message: "required field is missing".to_string(),
            });
        }
    }
    let count = fields.len() as u64;
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && count > max
    {
        out.push(Issue {
            path: path.to_string(),
            message: format!("must have at most {max} entries, not {count}"),
        });
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
    let mut reported_unknown = HashSet::new();
    for (name, field) in fields {
        if let Some(sub) = properties.and_then(|p| p.get(name)) {
            check(sub, field, &join(name), out);
        } else if let Some(sub) = additional {
            check(sub, field, &join(name), out);
        } else if !preserve && properties.is_some() && reported_unknown.insert(name.clone()) {
            out.push(Issue {
                path: join(name),
                message: "unknown field".to_string(),
            });
        }
    }
}

/// `value` as the API server defaults it before validating: each null of a field that is not
/// nullable and has a default becomes that default.
pub fn defaulted(schema: &Value, value: &Value) -> Value {
    match value {
        Value::Object(fields) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            Value::Object(
                fields
                    .iter()
                    .map(|(name, field)| {
                        let sub = properties.and_then(|p| p.get(name)).or(additional);
                        let field = match sub {
                            Some(sub) if field.is_null() && !flag(sub, "nullable") => {
                                sub.get("default").cloned().unwrap_or(Value::Null)
                            }
                            Some(sub) => defaulted(sub, field),
                            None => field.clone(),
                        };
                        (name.clone(), field)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => match schema.get("items") {
            Some(sub) => Value::Array(items.iter().map(|i| defaulted(sub, i)).collect()),
            None => value.clone(),
        },
        other => other.clone(),
    }
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn is_integer(value: &Value) -> bool {
    value.is_i64() || value.is_u64()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn article(type_name: &str) -> String {
    match type_name {
        "object" => "an object".into(),
        "array" => "a list".into(),
        "integer" => "an integer".into(),
        other => format!("a {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn issues(schema: Value, value: Value) -> Vec<String> {
        let mut out = Vec::new();
        check(&schema, &value, "spec", &mut out);
        out.into_iter()
            .map(|i| format!("{}: {}", i.path, i.message))
            .collect()
    }

    #[test]
    fn types_required_and_unknown_fields() {
        let schema = json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1},
                "replicas": {"type": "integer", "minimum": 0},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        });
        assert_eq!(
            issues(
                schema.clone(),
                json!({"name": "a", "replicas": 1, "labels": {"x": "y"}, "raw": {"any": 1}})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            issues(
                schema,
                json!({"replicas": -1, "labels": {"x": 1}, "nmae": "a"})
            ),
            vec![
                "spec.name: required field is missing",
                "spec.labels.x: must be a string, not an integer",
                "spec.nmae: unknown field",
                "spec.replicas: must be at least 0, not -1",
            ]
        );
    }

    #[test]
    fn enums_patterns_and_lengths() {
        let schema = json!({
            "type": "object",
            "properties": {
                "engine": {"type": "string", "enum": ["builtin", "xtrabackup"]},
                "start": {"type": "string", "pattern": "^([0-9a-f][0-9a-f])*$"},
                "parts": {"type": "array", "maxItems": 2, "items": {"type": "integer"}}
            }
        });
        assert_eq!(
            issues(
                schema,
                json!({"engine": "mydumper", "start": "8", "parts": [1, 2, "x"]})
            ),
            vec![
                "spec.engine: unsupported value \"mydumper\": supported values are \"builtin\", \"xtrabackup\"",
                "spec.parts: must have at most 2 item(s), not 3",
                "spec.parts[2]: must be an integer, not a string",
                "spec.start: \"8\" does not match the pattern ^([0-9a-f][0-9a-f])*$",
            ]
        );
    }

    #[test]
    fn map_lists_reject_duplicate_keys_with_defaults() {
        let schema = json!({
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["cell", "name"],
            "items": {"type": "object", "properties": {
                "cell": {"type": "string"},
                "name": {"type": "string", "default": ""}
            }}
        });
        assert_eq!(
            issues(
                schema,
                json!([{"cell": "a"}, {"cell": "a", "name": "x"}, {"cell": "a", "name": ""}])
            ),
            vec!["spec[2]: duplicate entry (cell=\"a\", name=\"\"): spec[0] has it already"]
        );
    }

    #[test]
    fn int_or_string_and_nulls() {
        let schema = json!({"type": "object", "properties": {
            "q": {"x-kubernetes-int-or-string": true},
            "s": {"type": "string", "nullable": true},
            "d": {"type": "string", "default": ""},
            "n": {"type": "integer"}
        }});
        assert_eq!(
            issues(schema.clone(), json!({"q": "1Gi", "s": null, "d": null})),
            Vec::<String>::new()
        );
        // As the API server: a null that is neither nullable nor defaulted is refused.
        assert_eq!(
            issues(schema.clone(), json!({"n": null, "q": null})),
            vec![
                "spec.n: must be an integer, not null",
                "spec.q: must not be null"
            ]
        );
        assert_eq!(
            defaulted(&schema, &json!({"s": null, "d": null, "n": 1})),
            json!({"s": null, "d": "", "n": 1})
        );
        assert_eq!(
            issues(schema, json!({"q": true})),
            vec!["spec.q: must be an integer or a string, not a boolean"]
        );
    }

    #[test]
    fn quantities_keep_their_pattern_and_minimum_and_maps_their_size() {
        let amount = json!({"x-kubernetes-int-or-string": true, "pattern": "^[1-9][0-9]*Gi$",
            "minimum": 1});
        let schema = json!({"type": "object", "properties": {"requests": {
            "type": "object", "maxProperties": 2, "additionalProperties": amount}}});
        assert_eq!(
            issues(
                schema.clone(),
                json!({"requests": {"storage": "10Gi", "x": 5}})
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            issues(
                schema,
                json!({"requests": {"storage": "-1Gi", "x": 0, "y": "1Gi"}})
            ),
            vec![
                "spec.requests: must have at most 2 entries, not 3",
                "spec.requests.storage: \"-1Gi\" does not match the pattern ^[1-9][0-9]*Gi$",
                "spec.requests.x: must be at least 1, not 0",
            ]
        );
    }
}
