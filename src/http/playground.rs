//! The playground: a web page at `/playground/` for managing assistants, files and vector
//! stores and trying runs live. It is static (plain ES modules, CSS and two vendored
//! libraries under `assets/playground/`, embedded in the binary), the same for everyone, and
//! holds no data: the page talks to `/v1` with the key the user types in, so it is served
//! without a key, like `/docs/`. Every answer carries a strict Content-Security-Policy (only
//! this origin's scripts, styles and API; images also from `blob:`, which is how the page
//! shows files it fetched with the key) and an ETag, so browsers revalidate instead of
//! downloading the files again.

use super::docs::redirect;
use crate::api::Reply;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use warp::http::{HeaderMap, Method};

/// One embedded file of the page.
pub struct PageFile {
    /// The path under `/playground/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! page_files {
    ($($path:literal => $content_type:expr),* $(,)?) => {
        &[$(PageFile {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/playground/", $path)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page loads; nothing else under `assets/playground/` is served (the README
/// and the licence files stay in the repository).
pub const PAGE_FILES: &[PageFile] = page_files![
    "index.html" => "text/html; charset=utf-8",
    "playground.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/main.js" => JS,
    "js/api.js" => JS,
    "js/sse.js" => JS,
    "js/accumulate.js" => JS,
    "js/markdown.js" => JS,
    "js/dom.js" => JS,
    "js/ui.js" => JS,
    "js/storage.js" => JS,
    "js/views/assistants.js" => JS,
    "js/views/threads.js" => JS,
    "js/views/messages.js" => JS,
    "js/views/steps.js" => JS,
    "js/views/files.js" => JS,
    "js/views/vector-stores.js" => JS,
    "vendor/marked.esm.js" => JS,
    "vendor/purify.es.mjs" => JS,
];

/// Files of `assets/playground/` that are deliberately not served.
pub const NOT_SERVED: &[&str] = &[
    "README.md",
    "vendor/marked.LICENSE",
    "vendor/dompurify.LICENSE",
    "vendor/dompurify.LICENSE-MPL",
];

/// No inline script or style (nothing needs 'unsafe-inline'), no other origin: the page
/// renders model output, which is untrusted, so even a sanitizer bug could neither run a
/// script nor send anything anywhere. `blob:` images are files fetched with the key (an
/// `<img src>` to the API could not send it).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob:; connect-src 'self'; font-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The answer to a playground request, or `None` when `rest` (the path without the `/api`
/// prefix) is not one.
pub fn reply(method: &Method, rest: &str, headers: &HeaderMap) -> Option<Reply> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    // The page's relative links need the trailing slash.
    if rest == "/playground" {
        return Some(redirect("playground/"));
    }
    let file = rest.strip_prefix("/playground/")?;
    let file = if file.is_empty() { "index.html" } else { file };
    let index = PAGE_FILES.iter().position(|f| f.path == file)?;
    let found = &PAGE_FILES[index];
    let etag = &etags()[index];
    let unchanged = headers
        .get_all("if-none-match")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim() == etag || v.trim() == "*");
    let mut extra = security_headers();
    extra.push(("etag".into(), etag.clone()));
    // Revalidate every time (a 304 when unchanged): a new binary may change any file under
    // the same name, and a stale module mixed with fresh ones would break the page.
    extra.push(("cache-control".into(), "no-cache".into()));
    Some(Reply::Raw {
        status: if unchanged { 304 } else { 200 },
        content_type: found.content_type.into(),
        body: if unchanged {
            Bytes::new()
        } else {
            Bytes::from_static(found.body)
        },
        headers: extra,
    })
}

fn security_headers() -> Vec<(String, String)> {
    vec![
        (
            "content-security-policy".into(),
            CONTENT_SECURITY_POLICY.into(),
        ),
        ("x-content-type-options".into(), "nosniff".into()),
        ("referrer-policy".into(), "no-referrer".into()),
        ("x-frame-options".into(), "DENY".into()),
        ("cross-origin-opener-policy".into(), "same-origin".into()),
    ]
}

/// Strong ETags of the files (a hash of the content), computed once.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        PAGE_FILES
            .iter()
            .map(|f| {
                let digest = Sha256::digest(f.body);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Option<Reply> {
        reply(&Method::GET, path, &HeaderMap::new())
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn every_file_is_served_with_its_type_and_the_policy() {
        for file in PAGE_FILES {
            match get(&format!("/playground/{}", file.path)) {
                Some(Reply::Raw {
                    status,
                    body,
                    headers,
                    content_type,
                }) => {
                    assert_eq!(status, 200, "{}", file.path);
                    assert!(!body.is_empty(), "{} is empty", file.path);
                    assert_eq!(content_type, file.content_type);
                    assert_eq!(
                        header(&headers, "content-security-policy"),
                        Some(CONTENT_SECURITY_POLICY)
                    );
                    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
                    assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
                    assert!(header(&headers, "etag").is_some());
                }
                other => panic!("{}: {other:?}", file.path),
            }
        }
    }

    /// A file added to `assets/playground/` must be listed (served) or named as not served,
    /// so the page never loads a file the binary lacks.
    #[test]
    fn every_asset_is_listed() {
        fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, root, out);
                } else {
                    let rel = path.strip_prefix(root).unwrap();
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/playground");
        let mut found = Vec::new();
        walk(&root, &root, &mut found);
        for file in &found {
            assert!(
                PAGE_FILES.iter().any(|f| f.path == file) || NOT_SERVED.contains(&file.as_str()),
                "assets/playground/{file} is neither served nor listed in NOT_SERVED"
            );
        }
        for file in PAGE_FILES {
            assert!(
                found.iter().any(|f| f == file.path),
                "{} is gone",
                file.path
            );
        }
    }

    #[test]
    fn the_index_is_the_page_and_the_bare_path_redirects() {
        let Some(Reply::Raw { body, .. }) = get("/playground/") else {
            panic!("no index");
        };
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("<script type=\"module\" src=\"js/main.js\">"));
        // Nothing inline that the policy would block.
        assert!(!text.contains("style="), "inline style in index.html");
        assert!(!text.contains("<style"), "inline style in index.html");
        let Some(Reply::Raw {
            status, headers, ..
        }) = get("/playground")
        else {
            panic!("no redirect");
        };
        assert_eq!(status, 302);
        assert_eq!(header(&headers, "location"), Some("playground/"));
    }

    #[test]
    fn an_unchanged_file_is_a_304() {
        let Some(Reply::Raw { headers, .. }) = get("/playground/js/main.js") else {
            panic!("no file");
        };
        let etag = header(&headers, "etag").unwrap().to_string();
        let mut request = HeaderMap::new();
        request.insert("if-none-match", etag.parse().unwrap());
        let Some(Reply::Raw { status, body, .. }) =
            reply(&Method::GET, "/playground/js/main.js", &request)
        else {
            panic!("no answer");
        };
        assert_eq!(status, 304);
        assert!(body.is_empty());
    }

    #[test]
    fn only_page_files_answer() {
        assert!(get("/playground/README.md").is_none());
        assert!(get("/playground/vendor/marked.LICENSE").is_none());
        assert!(get("/playground/../Cargo.toml").is_none());
        assert!(get("/playground/js/../index.html").is_none());
        assert!(get("/playgrounds").is_none());
        assert!(reply(&Method::POST, "/playground/", &HeaderMap::new()).is_none());
    }
}
