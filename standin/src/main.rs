//! The Chat Completions stand-in as a process, for the SDK tests, the scripts and the
//! benchmarks: `llm-standin [PORT]` serves on 127.0.0.1 and prints `listening on http://...`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    llm_standin::run(port).await
}
