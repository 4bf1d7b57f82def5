//! Multi-document YAML in and out, through serde-saphyr (maintained, panic-free, and its errors
//! carry line and column, which `validate` passes on to the user).

use serde::Serialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // Boxed: saphyr's errors carry a source snippet and are large.
    #[error("not valid YAML: {0}")]
    Parse(Box<serde_saphyr::Error>),
    #[error("cannot write YAML: {0}")]
    Write(Box<serde_saphyr::SerializeError>),
    #[error("cannot convert to YAML: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses every non-empty document of a YAML stream into a JSON value, in order.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, Error> {
    // YAML 1.2 booleans (only true/false): `y`, `on` or `no` stay strings, as shard names and
    // flag values need.
    let options = serde_saphyr::options! { strict_booleans: true };
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options)
        .map_err(|e| Error::Parse(Box::new(e)))?;
    Ok(docs.into_iter().filter(|doc| !doc.is_null()).collect())
}

/// Writes objects as one YAML stream, each document introduced by `---`.
pub fn to_documents<T: Serialize>(objects: &[T]) -> Result<String, Error> {
    let mut out = String::new();
    for object in objects {
        // Through a JSON value so that maps keep the field order serde gives and `null`s that
        // `skip_serializing_if` left out stay out.
        let value = serde_json::to_value(object)?;
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&value).map_err(|e| Error::Write(Box::new(e)))?);
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multi_document_round_trip() {
        let text = "a: 1\nb: [x, y]\n---\n---\nc: {d: true}\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(
            docs,
            vec![json!({"a": 1, "b": ["x", "y"]}), json!({"c": {"d": true}})]
        );
        let again = parse_documents(&to_documents(&docs).unwrap()).unwrap();
        assert_eq!(again, docs);
    }

    #[test]
    fn parse_error_says_where() {
        let err = parse_documents("a: 1\nb: [x\n").unwrap_err().to_string();
        assert!(err.contains("line"), "{err}");
    }
}
