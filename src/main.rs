//! Start-up: settings, logging, the app (store, queue, engine, HTTP server, work-queue
//! consumer), run until Ctrl-C / SIGTERM (then stopped in order: `App::run`). The exit
//! status is 0 after a signal, 1 when the server or the consumer died, 2 when it could not
//! start.

use assistants::app::{listen_addr, App};
use assistants::config::Settings;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Document extraction runs this binary as a child process with limits (see
    // `retrieval::extractor`): no runtime, no settings, no log.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.first().map(String::as_str) == Some(assistants::retrieval::extractor::CHILD_ARG) {
        return assistants::retrieval::extractor::child_main(&args[1..]);
    }
    serve()
}

#[tokio::main]
async fn serve() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        // The Azure SDK logs whole requests at debug (URLs with a SAS token, headers):
        // never below info, whatever RUST_LOG says.
        .filter_module("azure_core", log::LevelFilter::Info)
        .filter_module("azure_storage", log::LevelFilter::Info)
        .filter_module("azure_storage_blobs", log::LevelFilter::Info)
        .filter_module("azure_storage_queues", log::LevelFilter::Info)
        .init();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("assistants-service: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    if std::env::var_os("CODE_INTERPRETER_DIR").is_some() {
        // Removed setting: say so rather than ignore it silently.
        log::warn!(
            "CODE_INTERPRETER_DIR is no longer used: a local code-interpreter session keeps its \
             files in memory (a tmpfs of CODE_INTERPRETER_DISK_MB), nothing on disk"
        );
    }
    let app = match App::new(&settings) {
        Ok(app) => app,
        Err(e) => {
            eprintln!("assistants-service: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = listen_addr(&settings);
    let listener = match assistants::app::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("assistants-service: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    app.start_code_interpreter();
    assistants::memory::spawn_trimmer(app.shutdown());
    let local = listener.local_addr().unwrap_or(addr);
    if app.is_custom_handler() {
        log::info!(
            "serving as an Azure Functions custom handler on {local} ({})",
            app.describe()
        );
    } else {
        log::info!(
            "serving the Assistants API at http://{local}/v1 ({})",
            app.describe()
        );
        log::info!(
            "API documentation (Swagger UI) at http://{local}/docs/, OpenAPI document at \
             http://{local}/openapi.json"
        );
    }
    match app.run(listener, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("assistants-service: {why}");
            ExitCode::from(1)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
