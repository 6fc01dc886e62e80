//! The API documentation, served without a key (it is the same for everyone and holds no
//! data): the OpenAPI document at `/openapi.json` (also `/docs/openapi.json`, beside the page)
//! and Swagger UI at `/docs/`, whose files are embedded in the binary (`utoipa-swagger-ui`,
//! vendored), so the page works offline. `/` sends browsers to the playground
//! (`/playground/`, served by `super::playground` from here). Each path may carry the
//! Functions host's `/api` prefix, which then goes into the document's server URL.

use super::openapi;
use crate::api::Reply;
use bytes::Bytes;
use std::sync::{Arc, OnceLock};
use utoipa_swagger_ui::Config;
use warp::http::{HeaderMap, Method};

/// The files of the page (what `index.html` loads); nothing else of the bundle is served.
pub const PAGE_FILES: &[&str] = &[
    "index.html",
    "index.css",
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-initializer.js",
    "favicon-16x16.png",
    "favicon-32x32.png",
];

fn ui_config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            // Relative to the page (`.../docs/`), so it works behind any path prefix.
            Arc::new(
                Config::new(["openapi.json"])
                    .display_operation_id(true)
                    .persist_authorization(true)
                    .try_it_out_enabled(true)
                    .filter(true),
            )
        })
        .clone()
}

/// The answer to a documentation request, or `None` when `path` is not one.
pub fn reply(method: &Method, path: &str, headers: &HeaderMap) -> Option<Reply> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let (prefix, rest) = match path.strip_prefix("/api") {
        Some(rest) if rest.starts_with('/') => ("/api", rest),
        _ => ("", path),
    };
    if let Some(reply) = super::playground::reply(method, rest, headers) {
        return Some(reply);
    }
    match rest {
        "/" => Some(root(prefix, headers)),
        "/openapi.json" | "/docs/openapi.json" => Some(document(prefix)),
        // The page's relative links need the trailing slash.
        "/docs" => Some(redirect("docs/")),
        _ => {
            let file = rest.strip_prefix("/docs/")?;
            let file = if file.is_empty() { "index.html" } else { file };
            if !PAGE_FILES.contains(&file) {
                return None;
            }
            let found = utoipa_swagger_ui::serve(file, ui_config()).ok()??;
            Some(Reply::Raw {
                status: 200,
                content_type: found.content_type,
                body: Bytes::from(found.bytes.into_owned()),
                headers: vec![("cache-control".into(), "no-cache".into())],
            })
        }
    }
}

/// `/`: browsers go to the playground; programs (and the Functions host's readiness probe) get a
/// small JSON description of the service.
fn root(prefix: &str, headers: &HeaderMap) -> Reply {
    let wants_html = headers
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"));
    if wants_html {
        // Relative: `/` and `/api/` both lead to their own `playground/`.
        return redirect("playground/");
    }
    Reply::json(serde_json::json!({
        "object": "service",
        "name": "assistants-service",
        "api": format!("{prefix}/v1"),
        "docs": format!("{prefix}/docs/"),
        "playground": format!("{prefix}/playground/"),
        "openapi": format!("{prefix}/openapi.json"),
    }))
}

/// The document, with its server URL under the prefix it was asked for with.
fn document(prefix: &str) -> Reply {
    let mut doc = openapi::document().clone();
    doc["servers"][0]["url"] = serde_json::Value::String(format!("{prefix}/v1"));
    Reply::json(doc)
}

/// A 302 to `location` (the playground's too).
pub(super) fn redirect(location: &str) -> Reply {
    Reply::Raw {
        status: 302,
        content_type: "text/plain; charset=utf-8".into(),
        body: Bytes::from_static(b""),
        headers: vec![("location".into(), location.into())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Option<Reply> {
        reply(&Method::GET, path, &HeaderMap::new())
    }

    #[test]
    fn page_files_are_embedded() {
        for file in PAGE_FILES {
            match get(&format!("/docs/{file}")) {
                Some(Reply::Raw { status, body, .. }) => {
                    assert_eq!(status, 200, "{file}");
                    assert!(!body.is_empty(), "{file} is empty");
                }
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_documentation_paths_answer() {
        assert!(get("/docs/swagger-ui-bundle.js.map").is_none());
        assert!(get("/docs/../Cargo.toml").is_none());
        assert!(get("/v1/assistants").is_none());
        assert!(get("/api").is_none());
        assert!(reply(&Method::POST, "/openapi.json", &HeaderMap::new()).is_none());
    }

    #[test]
    fn the_prefix_goes_into_the_server_url() {
        let Some(Reply::Json { body, .. }) = get("/api/openapi.json") else {
            panic!("no document");
        };
        assert_eq!(body["servers"][0]["url"], "/api/v1");
        let Some(Reply::Json { body, .. }) = get("/docs/openapi.json") else {
            panic!("no document");
        };
        assert_eq!(body["servers"][0]["url"], "/v1");
    }

    #[test]
    fn the_root_sends_browsers_to_the_playground() {
        let mut headers = HeaderMap::new();
        headers.insert("accept", "text/html,application/xhtml+xml".parse().unwrap());
        for (path, location) in [("/", "playground/"), ("/api/", "playground/")] {
            let Some(Reply::Raw {
                status,
                headers: answer,
                ..
            }) = reply(&Method::GET, path, &headers)
            else {
                panic!("{path}: no redirect");
            };
            assert_eq!(status, 302);
            assert!(answer.contains(&("location".into(), location.into())));
        }
        let Some(Reply::Json { body, .. }) = get("/") else {
            panic!("no description");
        };
        assert_eq!(body["playground"], "/playground/");
        assert!(get("/playground/").is_some() && get("/api/playground/js/main.js").is_some());
    }

    #[test]
    fn the_initializer_loads_the_document_beside_the_page() {
        let Some(Reply::Raw { body, .. }) = get("/docs/swagger-initializer.js") else {
            panic!("no initializer");
        };
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("\"url\": \"openapi.json\""), "{text}");
    }
}
