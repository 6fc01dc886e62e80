use super::*;
use crate::http::router::{route, ROUTES};
use serde_json::Value;

const METHODS: &[&str] = &["get", "post", "delete", "put", "patch"];

/// Every operation of the document: (METHOD, path template, operationId, operation).
fn operations() -> Vec<(String, String, String, &'static Value)> {
    let mut out = Vec::new();
    for (path, item) in document()["paths"].as_object().expect("paths").iter() {
        for method in METHODS {
            if let Some(op) = item.get(*method) {
                let id = op["operationId"].as_str().expect("operationId").to_string();
                out.push((method.to_uppercase(), path.clone(), id, op));
            }
        }
    }
    out
}

/// Whether `template` (`/threads/{thread_id}`) can name the sample path (`/threads/t`).
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

#[test]
fn every_route_is_documented() {
    let ops = operations();
    for (method, path, name) in ROUTES {
        let found: Vec<_> = ops
            .iter()
            .filter(|(m, t, id, _)| m == method && id == name && matches(t, path))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{method} {path} ({name}) must be documented exactly once"
        );
    }
    assert_eq!(
        ops.len(),
        ROUTES.len(),
        "operations beyond the router's table"
    );
}

#[test]
fn every_documented_operation_routes_to_itself() {
    for (method, template, id, _) in operations() {
        // Each path parameter filled with a sample value, as a client would.
        let segments: Vec<&str> = template
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect();
        let op = route(&method, &segments)
            .unwrap_or_else(|e| panic!("{method} {template} does not route: {e:?}"));
        assert_eq!(op.name(), id, "{method} {template}");
    }
}

#[test]
fn path_parameters_are_the_templates_placeholders() {
    for (method, template, id, op) in operations() {
        let mut placeholders: Vec<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let mut in_path: Vec<&str> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{id}: path parameters are required");
                p["name"].as_str().unwrap_or_default()
            })
            .collect();
        placeholders.sort_unstable();
        in_path.sort_unstable();
        assert_eq!(placeholders, in_path, "{method} {template} ({id})");
    }
}

/// Calls `visit` on every JSON object in `value` (depth first), with its JSON pointer.
fn walk<'a>(value: &'a Value, at: &str, visit: &mut impl FnMut(&str, &'a Value)) {
    match value {
        Value::Object(map) => {
            visit(at, value);
            for (k, v) in map {
                walk(v, &format!("{at}/{k}"), visit);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &format!("{at}/{i}"), visit);
            }
        }
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut missing = Vec::new();
    walk(doc, "", &mut |at, object| {
        if let Some(target) = object.get("$ref").and_then(Value::as_str) {
            let pointer = target.trim_start_matches('#');
            if doc.pointer(pointer).is_none() {
                missing.push(format!("{at}: {target}"));
            }
        }
    });
    assert!(missing.is_empty(), "dangling references: {missing:#?}");
}

/// A field typed `serde_json::Value` without `#[schema(value_type = ...)]` becomes `{}` (any
/// value): each must say what it holds.
#[test]
fn no_schema_is_left_untyped() {
    let doc = document();
    let shape = [
        "type", "$ref", "oneOf", "anyOf", "allOf", "enum", "const", "not",
    ];
    let mut untyped = Vec::new();
    let schemas = |v: &'static Value, at: &str, out: &mut Vec<String>| {
        walk(v, at, &mut |at, object| {
            let is_schema_slot = [
                "/schema",
                "/items",
                "/additionalProperties",
                "/propertyNames",
            ]
            .iter()
            .any(|s| at.ends_with(s))
                || at.contains("/properties/")
                    && !at.ends_with("/properties")
                    && at.rsplit('/').nth(1) == Some("properties")
                || at
                    .rsplit('/')
                    .nth(1)
                    .is_some_and(|p| p == "oneOf" || p == "anyOf");
            // A path whose last segment is `items` is a path, not a schema's `items`.
            let is_path = at
                .strip_prefix("/paths/")
                .is_some_and(|path| doc["paths"].get(path).is_some());
            if is_schema_slot && !is_path && !shape.iter().any(|k| object.get(*k).is_some()) {
                out.push(at.to_string());
            }
        });
    };
    schemas(
        &doc["components"]["schemas"],
        "/components/schemas",
        &mut untyped,
    );
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if !shape.iter().any(|k| schema.get(*k).is_some()) {
            untyped.push(format!("/components/schemas/{name}"));
        }
    }
    // Each path item under its JSON pointer (`/paths/~1conversations~1{id}~1items`), so that a
    // path ending in `/items` is not taken for an array's `items`.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let pointer = format!("/paths/{}", path.replace('~', "~0").replace('/', "~1"));
        schemas(item, &pointer, &mut untyped);
    }
    assert!(untyped.is_empty(), "schemas without a type: {untyped:#?}");
}

#[test]
fn errors_and_auth_are_documented_on_every_operation() {
    let doc = document();
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
    for (method, template, id, op) in operations() {
        for status in ["400", "401", "500", "503"] {
            assert!(
                op["responses"].get(status).is_some(),
                "{method} {template} ({id}) lacks {status}"
            );
        }
        assert_eq!(
            op["responses"].get("413").is_some(),
            op.get("requestBody").is_some(),
            "{id}: 413 exactly where there is a body"
        );
        let has_ids = template.contains('{');
        if has_ids {
            assert!(op["responses"].get("404").is_some(), "{id} lacks 404");
        }
    }
}

/// The enums of the document are the values the code uses or accepts.
#[test]
fn string_enums_agree_with_the_code() {
    use crate::api::schemas::*;
    let run_statuses: Vec<&str> = crate::model::run::RunStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(RunStatus::VALUES, run_statuses.as_slice());
    let step_statuses: Vec<&str> = crate::model::step::StepStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(RunStepStatus::VALUES, step_statuses.as_slice());
    let file_statuses: Vec<&str> = crate::model::file::FileStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(FileStatus::VALUES, file_statuses.as_slice());
    let vector_store_file_statuses: Vec<&str> =
        crate::model::vector_store::VectorStoreFileStatus::ALL
            .iter()
            .map(|s| s.as_str())
            .collect();
    assert_eq!(
        VectorStoreFileStatus::VALUES,
        vector_store_file_statuses.as_slice()
    );
    let batch_statuses: Vec<&str> = crate::model::vector_store::FileBatchStatus::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    assert_eq!(FileBatchStatus::VALUES, batch_statuses.as_slice());
    for order in ListOrder::VALUES {
        let query = [("order".to_string(), order.to_string())];
        assert!(crate::api::pagination::ListQuery::parse(&query, 100, 20).is_ok());
    }
    for limit in ["1", "100"] {
        let query = [("limit".to_string(), limit.to_string())];
        assert!(crate::api::pagination::ListQuery::parse(&query, 100, 20).is_ok());
    }
    for limit in ["0", "101"] {
        let query = [("limit".to_string(), limit.to_string())];
        assert!(crate::api::pagination::ListQuery::parse(&query, 100, 20).is_err());
    }
    for detail in ImageDetail::VALUES {
        let content = serde_json::json!([
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": detail}}
        ]);
        assert!(crate::api::types::parse_content("content", &content).is_ok());
    }
    for role in MessageRole::VALUES {
        let message: crate::api::types::CreateMessage =
            serde_json::from_value(serde_json::json!({"role": role, "content": "hi"})).unwrap();
        assert!(message.validate("").is_ok(), "{role}");
    }
    let doc = document();
    assert_eq!(
        doc["components"]["schemas"]["ReasoningEffort"]["enum"],
        serde_json::json!(crate::model::assistant::REASONING_EFFORTS)
    );
    assert_eq!(
        doc["components"]["schemas"]["FilePurpose"]["enum"],
        serde_json::json!(crate::api::files::PURPOSES)
    );
    // A file object's purpose: an upload's, or the one of the files the service makes.
    let mut object: Vec<&str> = crate::model::file::OBJECT_PURPOSES.to_vec();
    let mut expected: Vec<&str> = crate::api::files::PURPOSES.to_vec();
    expected.push(crate::model::file::OUTPUT_PURPOSE);
    object.sort_unstable();
    expected.sort_unstable();
    assert_eq!(object, expected);
    assert_eq!(
        doc["components"]["schemas"]["FileObjectPurpose"]["enum"],
        serde_json::json!(crate::model::file::OBJECT_PURPOSES)
    );
}

#[test]
fn served_document_names_the_api_prefix() {
    assert_eq!(document()["servers"][0]["url"], "/v1");
    assert_eq!(document()["openapi"], "3.1.0");
}

/// The Responses and Conversations schemas (`responses`) replace none of the generated ones:
/// every schema its operations use is its own.
#[test]
fn responses_schemas_keep_the_assistants_names() {
    let generated = serde_json::to_value(ApiDoc::openapi()).expect("document");
    let names = generated["components"]["schemas"]
        .as_object()
        .expect("schemas");
    let added = super::responses::schemas_added_to(&generated);
    assert!(added.contains(&"Response") && added.contains(&"ResponseStreamEvent"));
    for name in added {
        assert!(!names.contains_key(name), "{name} is a generated schema");
        assert!(document()["components"]["schemas"].get(name).is_some());
    }
}

/// A response (created or retrieved) answers JSON or its events; no other operation of the
/// Responses and Conversations APIs streams.
#[test]
fn response_streams_are_documented() {
    for (method, template, id, op) in operations() {
        let content = &op["responses"]["200"]["content"];
        let streams = content.get("text/event-stream").is_some();
        assert_eq!(
            streams,
            matches!(
                id.as_str(),
                "createResponse"
                    | "getResponse"
                    | "createRun"
                    | "createThreadAndRun"
                    | "submitToolOuputsToRun"
            ),
            "{method} {template} ({id})"
        );
        if template.starts_with("/responses") || template.starts_with("/conversations") {
            assert!(content.get("application/json").is_some(), "{id}");
        }
    }
    let get = &document()["paths"]["/responses/{response_id}"]["get"];
    let names: Vec<&str> = get["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "response_id",
            "include",
            "stream",
            "starting_after",
            "include_obfuscation"
        ]
    );
}
