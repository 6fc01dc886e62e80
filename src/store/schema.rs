//! The schema version of stored JSON documents, and the read path that upgrades older ones.
//!
//! Every JSON object the service writes carries `_schema_version` (an internal field, like
//! `_seq`: never part of an API object). Readers accept any version up to `CURRENT`, upgrade
//! the document to `CURRENT` before it is parsed into its record type, and refuse a
//! document from a newer build rather than parse it into a shape it may no longer have.
//! The field is taken off before parsing, so no record type ever holds it (and so no
//! response can carry it).
//!
//! Version 1 is every document written before the field existed (no field); version 2 only
//! adds the field. A later change of a stored shape bumps `CURRENT` and adds its step to
//! `upgrade`.

use super::StoreError;
use serde_json::Value;

/// The name of the version field in a stored document.
pub const FIELD: &str = "_schema_version";

/// The version this build writes.
pub const CURRENT: u64 = 2;

/// The version of a document without the field: written before versions existed.
const UNVERSIONED: u64 = 1;

/// Takes the version off a stored document (read from `key`) and brings the document up to
/// `CURRENT`. Documents that are not JSON objects carry no version and pass unchanged.
pub fn upgrade(key: &str, mut document: Value) -> Result<Value, StoreError> {
    let Some(object) = document.as_object_mut() else {
        return Ok(document);
    };
    let version = match object.remove(FIELD) {
        None => UNVERSIONED,
        Some(v) => v.as_u64().ok_or_else(|| {
            StoreError::Other(format!("object {key} has an invalid {FIELD}: {v}"))
        })?,
    };
    if version > CURRENT {
        return Err(StoreError::Other(format!(
            "object {key} has schema version {version}, newer than this build's {CURRENT}: \
             refusing to read it (run a newer build)"
        )));
    }
    // Migrations go here, one step per version, each taking the document from `version`
    // to `version + 1` (matching on the key's shape for the record kind when a step
    // concerns one kind). 1 -> 2 only adds the field, which is already taken off.
    Ok(document)
}

/// A serialised document with the current version added, when it is a JSON object. The
/// field is written first, into the bytes as serialised, so the document keeps its field
/// order and is not built twice.
pub fn stamp(mut serialised: Vec<u8>) -> Vec<u8> {
    if serialised.first() != Some(&b'{') {
        return serialised;
    }
    let empty = serialised.get(1) == Some(&b'}');
    let field = format!("\"{FIELD}\":{CURRENT}{}", if empty { "" } else { "," });
    serialised.splice(1..1, field.into_bytes());
    serialised
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stamped(value: &Value) -> Value {
        let bytes = stamp(serde_json::to_vec(value).unwrap());
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn stamping_adds_the_current_version_to_objects_only() {
        assert_eq!(
            stamped(&json!({"id": "a", "n": 1})),
            json!({"id": "a", "n": 1, FIELD: CURRENT})
        );
        assert_eq!(stamped(&json!({})), json!({ FIELD: CURRENT }));
        assert_eq!(stamped(&json!([1, 2])), json!([1, 2]));
        assert_eq!(stamped(&json!("s")), json!("s"));
    }

    #[test]
    fn the_version_is_written_first_and_the_field_order_kept() {
        let bytes = stamp(br#"{"z":1,"a":2}"#.to_vec());
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            format!(r#"{{"{FIELD}":{CURRENT},"z":1,"a":2}}"#)
        );
    }

    #[test]
    fn older_and_current_documents_read_without_the_field() {
        let v1 = json!({"id": "a"});
        assert_eq!(upgrade("k", v1.clone()).unwrap(), v1);
        assert_eq!(upgrade("k", stamped(&v1)).unwrap(), v1);
        assert_eq!(upgrade("k", json!([1])).unwrap(), json!([1]));
    }

    #[test]
    fn a_newer_or_invalid_version_is_refused() {
        let newer = json!({"id": "a", FIELD: CURRENT + 1});
        let err = upgrade("t/x/assistants/a", newer).unwrap_err().to_string();
        assert!(err.contains("t/x/assistants/a"), "{err}");
        assert!(err.contains("newer than this build"), "{err}");
        assert!(upgrade("k", json!({ FIELD: "2" })).is_err());
        assert!(upgrade("k", json!({ FIELD: -1 })).is_err());
    }
}
