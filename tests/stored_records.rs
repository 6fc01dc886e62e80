//! Stored records written before they carried a schema version (`tests/fixtures/records/v1`,
//! see the README there) still load, are upgraded, and write back as the same JSON plus the
//! current version, which then reads the same; a record from a newer build is refused.

use assistants::model::{
    assistant::Assistant, file::FileRecord, message::Message, run::RunRecord, step::RunStep,
    thread::ThreadRecord, vector_store::FileBatchRecord, vector_store::VectorStoreFileRecord,
    vector_store::VectorStoreRecord,
};
use assistants::store::{parse_json, schema, to_stored_json};
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::path::Path;

const V1: &str = "tests/fixtures/records/v1";

/// Loads a v1 fixture as `T`, writes it back, and checks what was written.
fn round_trips<T: DeserializeOwned + Serialize>(name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(V1).join(name);
    let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let original: Value = serde_json::from_slice(&stored).unwrap();
    assert!(original.get(schema::FIELD).is_none(), "{name} is not v1");

    let record: T = parse_json(name, &stored).unwrap_or_else(|e| panic!("{name}: {e}"));
    let written = to_stored_json(&record).unwrap();
    let mut rewritten: Value = serde_json::from_slice(&written).unwrap();
    assert_eq!(rewritten[schema::FIELD], schema::CURRENT, "{name}");
    rewritten
        .as_object_mut()
        .and_then(|o| o.remove(schema::FIELD));
    assert_eq!(rewritten, original, "{name} changed on the way back");

    let reread: T = parse_json(name, &written).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        serde_json::to_value(&reread).unwrap(),
        serde_json::to_value(&record).unwrap(),
        "{name} reads differently once written back"
    );
}

#[test]
fn every_v1_fixture_is_tested() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(V1);
    let count = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    // One `round_trips` call per fixture below: a new fixture must be added there too.
    assert_eq!(count, 14);
}

#[test]
fn v1_records_load_upgrade_and_round_trip() {
    round_trips::<Assistant>("assistant.json");
    round_trips::<FileRecord>("file.json");
    round_trips::<FileBatchRecord>("file_batch.json");
    round_trips::<Message>("message_assistant_with_citation.json");
    round_trips::<Message>("message_user_with_attachment.json");
    round_trips::<RunRecord>("run_completed_with_rounds.json");
    round_trips::<RunRecord>("run_requires_action.json");
    round_trips::<RunStep>("step_file_search.json");
    round_trips::<RunStep>("step_function_in_progress.json");
    round_trips::<RunStep>("step_message_creation.json");
    round_trips::<ThreadRecord>("thread_with_active_run.json");
    round_trips::<VectorStoreRecord>("vector_store.json");
    round_trips::<VectorStoreRecord>("vector_store_expiring.json");
    round_trips::<VectorStoreFileRecord>("vector_store_file_in_batch.json");
}

#[test]
fn a_record_from_a_newer_build_is_refused() {
    let newer = format!(
        r#"{{"{}":{},"id":"asst_x","object":"assistant"}}"#,
        schema::FIELD,
        schema::CURRENT + 1
    );
    let err = parse_json::<Value>("t/a/assistants/asst_x", newer.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.contains("newer than this build"), "{err}");
}
