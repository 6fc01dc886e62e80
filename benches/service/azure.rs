//! Bare Azurite blob calls (Shared Key signed HTTP over the harness's raw client: the floor
//! a storage round trip costs), and a counting proxy that tells which Azure Storage
//! transactions (blob and queue) the service makes.

use crate::http::{request, Conn, Resp};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use warp::Reply as _;

pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public, documented by Microsoft).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const VERSION: &str = "2021-08-06";

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// RFC 1123 date of now (`Tue, 01 Jan 2030 00:00:00 GMT`).
fn http_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Signed blob requests against Azurite's blob endpoint.
#[derive(Clone)]
pub struct Blob {
    pub addr: SocketAddr,
    key: Vec<u8>,
    host: String,
}

impl Blob {
    pub fn new(addr: SocketAddr) -> Blob {
        Blob {
            addr,
            key: base64::engine::general_purpose::STANDARD
                .decode(KEY)
                .expect("key"),
            host: addr.to_string(),
        }
    }

    /// A Shared Key signed request. `path` is after the account (`/container/blob`);
    /// `query` pairs are sent as they are (values must not need escaping).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<u8> {
        let date = http_date();
        let full_path = format!("/{ACCOUNT}{path}");
        let header = |name: &str| {
            extra
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .unwrap_or("")
        };
        let len = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let mut xms: Vec<(String, String)> = extra
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        xms.push(("x-ms-date".into(), date.clone()));
        xms.push(("x-ms-version".into(), VERSION.into()));
        xms.sort();
        let mut to_sign = format!(
            "{method}\n\n\n{len}\n\n{}\n\n\n{}\n{}\n\n\n",
            header("content-type"),
            header("if-match"),
            header("if-none-match"),
        );
        for (k, v) in &xms {
            to_sign.push_str(&format!("{k}:{v}\n"));
        }
        to_sign.push_str(&format!("/{ACCOUNT}{full_path}"));
        let mut sorted: Vec<(String, &str)> = query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), *v))
            .collect();
        sorted.sort();
        for (k, v) in &sorted {
            to_sign.push_str(&format!("\n{k}:{v}"));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .encode(hmac_sha256(&self.key, to_sign.as_bytes()));
        let auth = format!("SharedKey {ACCOUNT}:{signature}");
        let mut url = full_path;
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &query
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        }
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        headers.push(("x-ms-date", &date));
        headers.push(("x-ms-version", VERSION));
        headers.push(("authorization", &auth));
        request(method, &self.host, &url, &headers, body)
    }

    pub async fn create_container(&self, conn: &mut Conn, name: &str) -> Result<(), String> {
        let r = conn
            .send(&self.request(
                "PUT",
                &format!("/{name}"),
                &[("restype", "container")],
                &[],
                b"",
            ))
            .await?;
        match r.status {
            201 | 409 => Ok(()),
            s => Err(format!("create container: {s} {}", r.text())),
        }
    }

    /// Put Blob; `create_only` sends `If-None-Match: *` as the service's creates do.
    pub async fn put(
        &self,
        conn: &mut Conn,
        container: &str,
        name: &str,
        body: &[u8],
        create_only: bool,
    ) -> Result<Resp, String> {
        let mut extra = vec![
            ("x-ms-blob-type", "BlockBlob"),
            ("content-type", "application/json"),
        ];
        if create_only {
            extra.push(("if-none-match", "*"));
        }
        let r = conn
            .send(&self.request("PUT", &format!("/{container}/{name}"), &[], &extra, body))
            .await?;
        if r.status != 201 {
            return Err(format!("put blob: {} {}", r.status, r.text()));
        }
        Ok(r)
    }

    pub async fn get(&self, conn: &mut Conn, container: &str, name: &str) -> Result<Resp, String> {
        let r = conn
            .send(&self.request("GET", &format!("/{container}/{name}"), &[], &[], b""))
            .await?;
        if r.status != 200 {
            return Err(format!("get blob: {} {}", r.status, r.text()));
        }
        Ok(r)
    }

    /// Get Blob with the whole-object range the service's SDK client asks for.
    pub async fn get_ranged(
        &self,
        conn: &mut Conn,
        container: &str,
        name: &str,
    ) -> Result<Resp, String> {
        let r = conn
            .send(&self.request(
                "GET",
                &format!("/{container}/{name}"),
                &[],
                &[("x-ms-range", "bytes=0-268435455")],
                b"",
            ))
            .await?;
        if r.status != 200 && r.status != 206 {
            return Err(format!("get blob: {} {}", r.status, r.text()));
        }
        Ok(r)
    }

    /// List Blobs under `prefix` (one page of up to 5000); returns the names.
    pub async fn list(
        &self,
        conn: &mut Conn,
        container: &str,
        prefix: &str,
    ) -> Result<Vec<String>, String> {
        let r = conn
            .send(&self.request(
                "GET",
                &format!("/{container}"),
                &[
                    ("restype", "container"),
                    ("comp", "list"),
                    ("prefix", prefix),
                    ("maxresults", "5000"),
                ],
                &[],
                b"",
            ))
            .await?;
        if r.status != 200 {
            return Err(format!("list blobs: {} {}", r.status, r.text()));
        }
        let text = r.text();
        Ok(text
            .split("<Name>")
            .skip(1)
            .filter_map(|s| s.split("</Name>").next())
            .map(str::to_string)
            .collect())
    }
}

/// Azure Storage transactions seen by the counting proxy, by class (`blob Get Blob
/// (message)`, `queue Put Message`, ...).
#[derive(Clone, Default)]
pub struct Tally(Arc<Mutex<BTreeMap<String, u64>>>);

impl Tally {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    fn add(&self, class: String) {
        if let Ok(mut m) = self.0.lock() {
            *m.entry(class).or_default() += 1;
        }
    }
}

/// `after - before`, without zero entries.
pub fn diff(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// What kind of object a blob key names (for the split of reads by kind).
fn object_kind(path: &str) -> &'static str {
    let segs: Vec<&str> = path.split('/').collect();
    if segs.contains(&"messages") {
        "message"
    } else if segs.contains(&"steps") {
        "step"
    } else if segs.contains(&"runs") {
        "run"
    } else if segs.last() == Some(&"thread") {
        "thread"
    } else if segs.contains(&"assistants") {
        "assistant"
    } else {
        "other"
    }
}

fn classify(service: &str, method: &str, path: &str, query: &str) -> String {
    let q = |name: &str| {
        query
            .split('&')
            .any(|p| p == name || p.starts_with(&format!("{name}=")))
    };
    let has = |pair: &str| query.split('&').any(|p| p.eq_ignore_ascii_case(pair));
    if service == "blob" {
        if has("comp=list") {
            return "blob List Blobs".into();
        }
        if has("restype=container") {
            return format!("blob container {method}");
        }
        let kind = object_kind(path);
        match method {
            "GET" => format!("blob Get Blob ({kind})"),
            "HEAD" => format!("blob Get Properties ({kind})"),
            "PUT" => format!("blob Put Blob ({kind})"),
            "DELETE" => format!("blob Delete Blob ({kind})"),
            m => format!("blob {m} ({kind})"),
        }
    } else {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let on_messages = segs.len() >= 3 && segs[2] == "messages";
        let one_message = segs.len() >= 4;
        match (method, on_messages, one_message) {
            ("POST", true, false) => "queue Put Message".into(),
            ("GET", true, false) if q("peekonly") => "queue Peek Messages".into(),
            ("GET", true, false) => "queue Get Messages".into(),
            ("DELETE", true, true) => "queue Delete Message".into(),
            ("PUT", true, true) => "queue Update Message".into(),
            ("DELETE", true, false) => "queue Clear Messages".into(),
            (m, _, _) => format!("queue {m} (queue)"),
        }
    }
}

/// Starts a forwarding proxy for one Azurite service on a loopback port; every request is
/// tallied, then passed on unchanged (the Shared Key signature covers path, query and
/// headers, not the host, so it stays valid).
pub async fn start_counting_proxy(
    service: &'static str,
    upstream: SocketAddr,
    tally: Tally,
) -> SocketAddr {
    use warp::Filter;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: warp::http::HeaderMap,
                  body: bytes::Bytes| {
                let client = client.clone();
                let tally = tally.clone();
                async move {
                    tally.add(classify(service, method.as_str(), path.as_str(), &query));
                    let mut url = format!("http://{upstream}{}", path.as_str());
                    if !query.is_empty() {
                        url.push('?');
                        url.push_str(&query);
                    }
                    let mut req = client.request(
                        reqwest::Method::from_bytes(method.as_str().as_bytes()).expect("method"),
                        url,
                    );
                    for (k, v) in headers.iter() {
                        let name = k.as_str();
                        if matches!(
                            name,
                            "host" | "content-length" | "connection" | "transfer-encoding"
                        ) {
                            continue;
                        }
                        req = req.header(name, v.as_bytes());
                    }
                    let answer = match req.body(body).send().await {
                        Ok(r) => r,
                        Err(e) => {
                            return warp::http::Response::builder()
                                .status(502)
                                .body(bytes::Bytes::from(e.to_string()))
                                .map(warp::reply::Reply::into_response)
                                .unwrap_or_else(|_| warp::reply().into_response())
                        }
                    };
                    let status = answer.status().as_u16();
                    let mut builder = warp::http::Response::builder().status(status);
                    for (k, v) in answer.headers().iter() {
                        if matches!(
                            k.as_str(),
                            "content-length" | "connection" | "transfer-encoding"
                        ) {
                            continue;
                        }
                        builder = builder.header(k.as_str(), v.as_bytes());
                    }
                    let bytes = answer.bytes().await.unwrap_or_default();
                    builder
                        .body(bytes)
                        .map(warp::reply::Reply::into_response)
                        .unwrap_or_else(|_| warp::reply().into_response())
                }
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind proxy");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(warp::serve(route).incoming(listener).run());
    addr
}
