//! The Chat Completions stand-in as a process, for the SDK tests and the benchmarks:
//! `llm-standin [PORT]` serves on 127.0.0.1 and prints `listening on http://...`.

use assistants::standin::StandIn;
use std::net::SocketAddr;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let standin = StandIn::new();
    match standin
        .spawn(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
    {
        Ok(addr) => {
            println!("listening on http://{addr}/v1");
            let _ = tokio::signal::ctrl_c().await;
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("llm-standin: cannot listen: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
