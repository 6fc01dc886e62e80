//! A minimal HTTP/1.1 keep-alive client over one TCP connection, so the load generator costs
//! the machine as little as possible (it shares the two cores with the server). It sends a
//! prepared request and reads one response (Content-Length or chunked); nothing else.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest wait for one response; a stuck request is an error, never a hang.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Resp {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Builds request bytes once (they are reused as they are for every repetition).
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n").as_bytes());
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

pub struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    /// How often the connection had to be opened again (the server closed it).
    pub reconnects: u64,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            reconnects: 0,
        }
    }

    async fn stream(&mut self) -> std::io::Result<&mut TcpStream> {
        if self.stream.is_none() {
            let s = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(self.addr))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect"))??;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        Ok(self.stream.as_mut().expect("just set"))
    }

    /// Sends `req` and reads the response. A connection the server closed while idle is
    /// opened again once.
    pub async fn send(&mut self, req: &[u8]) -> Result<Resp, String> {
        let fresh = self.stream.is_none();
        match tokio::time::timeout(IO_TIMEOUT, self.send_once(req)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if !fresh && e.1 => {
                // Nothing came back on a reused connection: it was closed; retry once.
                self.stream = None;
                self.reconnects += 1;
                tokio::time::timeout(IO_TIMEOUT, self.send_once(req))
                    .await
                    .map_err(|_| "timeout".to_string())?
                    .map_err(|e| e.0)
            }
            Ok(Err(e)) => {
                self.stream = None;
                Err(e.0)
            }
            Err(_) => {
                self.stream = None;
                Err("timeout".into())
            }
        }
    }

    /// The error and whether nothing at all was read (so a retry is safe).
    async fn send_once(&mut self, req: &[u8]) -> Result<Resp, (String, bool)> {
        let s = self.stream().await.map_err(|e| (e.to_string(), false))?;
        if let Err(e) = s.write_all(req).await {
            return Err((format!("write: {e}"), true));
        }
        self.read_response().await
    }

    /// Sends `req` and reads a chunked (event stream) response as it arrives, calling
    /// `on_data` with each read's decoded bytes; returns the status and the whole body.
    pub async fn send_streaming(
        &mut self,
        req: &[u8],
        mut on_data: impl FnMut(&[u8]),
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        tokio::time::timeout(timeout, async {
            let s = self.stream().await.map_err(|e| e.to_string())?;
            s.write_all(req).await.map_err(|e| format!("write: {e}"))?;
            let head_end = loop {
                if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                    break i;
                }
                if self.fill().await? == 0 {
                    return Err("connection closed".to_string());
                }
            };
            let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
            self.buf.drain(..head_end + 4);
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or("bad status line")?;
            if !head.contains("transfer-encoding: chunked") {
                // Not a stream: read it as a plain response body.
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                while self.buf.len() < len {
                    if self.fill().await? == 0 {
                        return Err("closed in body".into());
                    }
                }
                let body: Vec<u8> = self.buf.drain(..len).collect();
                on_data(&body);
                return Ok((status, body));
            }
            let mut body = Vec::new();
            loop {
                // Decode every complete chunk in the buffer; report them together.
                let mut decoded = Vec::new();
                let mut finished = false;
                while let Some(line_end) = find(&self.buf, b"\r\n") {
                    let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                    let size =
                        usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
                    if self.buf.len() < line_end + 2 + size + 2 {
                        break;
                    }
                    self.buf.drain(..line_end + 2);
                    decoded.extend(self.buf.drain(..size));
                    self.buf.drain(..2);
                    if size == 0 {
                        finished = true;
                        break;
                    }
                }
                if !decoded.is_empty() {
                    on_data(&decoded);
                    body.extend_from_slice(&decoded);
                }
                if finished {
                    return Ok((status, body));
                }
                if self.fill().await? == 0 {
                    return Err("closed in stream".into());
                }
            }
        })
        .await
        .map_err(|_| {
            self.stream = None;
            "stream timed out".to_string()
        })?
    }

    async fn fill(&mut self) -> Result<usize, String> {
        let s = self.stream.as_mut().ok_or("no connection")?;
        let mut chunk = [0u8; 16 * 1024];
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn read_response(&mut self) -> Result<Resp, (String, bool)> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            let before = self.buf.is_empty();
            match self.fill().await {
                Ok(0) => return Err(("connection closed".into(), before)),
                Ok(_) => {}
                Err(e) => return Err((e, before)),
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| (format!("bad status line {status_line:?}"), false))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let body = if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            while self.buf.len() < len {
                match self.fill().await {
                    Ok(0) => return Err(("closed in body".into(), false)),
                    Ok(_) => {}
                    Err(e) => return Err((e, false)),
                }
            }
            self.buf.drain(..len).collect()
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    match self.fill().await {
                        Ok(0) => return Err(("closed in chunk".into(), false)),
                        Ok(_) => {}
                        Err(e) => return Err((e, false)),
                    }
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| (format!("bad chunk size {size_text:?}"), false))?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    match self.fill().await {
                        Ok(0) => return Err(("closed in chunk".into(), false)),
                        Ok(_) => {}
                        Err(e) => return Err((e, false)),
                    }
                }
                body.extend(self.buf.drain(..size));
                self.buf.drain(..2);
                if size == 0 {
                    break;
                }
            }
            body
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            // Read to the end (HTTP/1.0 style); not expected from these servers.
            loop {
                match self.fill().await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err((e, false)),
                }
            }
            self.stream = None;
            std::mem::take(&mut self.buf)
        };
        if get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            self.stream = None;
        }
        Ok(Resp { status, body })
    }
}
