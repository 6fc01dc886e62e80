//! Text extraction in a child process with limits: a hostile document may cost that process
//! its life, never the service's.
//!
//! Parsers of untrusted documents can recurse without end (a PDF form that draws itself, a
//! page tree that contains itself, 200,000 nested arrays), allocate without bound (a 1 MB
//! stream that inflates to 1 GiB) or spin. A stack overflow aborts the whole process and
//! `catch_unwind` cannot catch it, so parsing runs in a child: this binary started as
//! `<exe> __extract <max stream bytes> <file name> <content type>`, the file's bytes on its
//! stdin, its text on its stdout. The child gets an empty environment (no secrets) and
//! rlimits on address space, CPU time, files and core dumps, dies with the parent, and is
//! killed at a wall-clock deadline; the parent reads at most `max_text_bytes` of its
//! output. Whatever way the child ends other than with text, the file is `invalid_file`.

use super::extract::{extract, ExtractError, ExtractLimits};
use crate::config::IngestSettings;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::io::{Read, Write};
use std::process::{ExitCode, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The argument that starts this binary as the extraction child.
pub const CHILD_ARG: &str = "__extract";

/// The child's exit codes for the two errors it reports itself (its stdout is the message).
const EXIT_UNSUPPORTED: u8 = 10;
const EXIT_INVALID: u8 = 11;

/// The child's side: `args` are what follows `CHILD_ARG`. Reads the file from stdin, writes
/// its text to stdout.
pub fn child_main(args: &[String]) -> ExitCode {
    let [max_stream, filename, content_type] = args else {
        eprintln!("usage: {CHILD_ARG} <max stream bytes> <file name> <content type>");
        return ExitCode::from(2);
    };
    let limits = ExtractLimits {
        max_stream_bytes: max_stream.parse().unwrap_or(256 << 20),
    };
    let mut bytes = Vec::new();
    if std::io::stdin().lock().read_to_end(&mut bytes).is_err() {
        return ExitCode::from(2);
    }
    let (code, out) = match extract(filename, content_type, &bytes, &limits) {
        Ok(text) => (0, text),
        Err(ExtractError::Unsupported(m)) => (EXIT_UNSUPPORTED, m),
        // `extract` itself never reports this one.
        Err(ExtractError::Invalid(m)) | Err(ExtractError::Unavailable(m)) => (EXIT_INVALID, m),
    };
    drop(bytes);
    let mut stdout = std::io::stdout().lock();
    // The parent may stop reading (too much text): then there is nothing left to do.
    if stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(2);
    }
    ExitCode::from(code)
}

/// The text of a file, extracted by a child process within `limits`. `input` is the
/// file's content, streamed into the child as it is read.
pub async fn extract_isolated<S>(
    limits: &IngestSettings,
    filename: &str,
    content_type: &str,
    input: S,
) -> Result<String, ExtractError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
{
    let unreadable = |why: &str| {
        ExtractError::Invalid(format!(
            "{} could not be read within the limits of document extraction ({why}).",
            shorten(filename, 80)
        ))
    };
    let mut command = tokio::process::Command::new(&limits.extractor);
    command
        .arg(CHILD_ARG)
        .arg(limits.max_stream_bytes.to_string())
        .arg(argument(filename))
        .arg(argument(content_type))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let rlimits = ChildLimits {
        address_space: limits.memory_bytes,
        cpu_seconds: limits.cpu_seconds,
        parent: std::process::id(),
    };
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (setrlimit, prctl, getppid, _exit); it allocates nothing.
    unsafe {
        command.pre_exec(move || rlimits.apply());
    }
    let mut child = command.spawn().map_err(|e| {
        log::warn!(
            "cannot start the extraction process {}: {e}",
            limits.extractor.display()
        );
        ExtractError::Unavailable(format!("cannot start document extraction: {e}"))
    })?;
    let (Some(stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(ExtractError::Unavailable(
            "document extraction has no pipes".into(),
        ));
    };
    // The content goes in from a task of its own: the child may stop reading at any time
    // (it died, or it reads everything before writing), and its output must be read
    // meanwhile.
    let feeder = tokio::spawn(feed(input, stdin));
    let errors = tokio::spawn(async move {
        let mut head = Vec::new();
        let _ = (&mut stderr).take(2048).read_to_end(&mut head).await;
        // Drain the rest so the child never blocks on a full pipe.
        let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
        String::from_utf8_lossy(&head).into_owned()
    });
    let wall = Duration::from_secs(limits.cpu_seconds.saturating_mul(2).saturating_add(10));
    let cap = limits.max_text_bytes;
    let finished = tokio::time::timeout(wall, async {
        let mut text = Vec::new();
        let read = (&mut stdout).take(cap + 1).read_to_end(&mut text).await;
        if read.is_err() || text.len() as u64 > cap {
            return (None, text);
        }
        (child.wait().await.ok(), text)
    })
    .await;
    let (status, text) = match finished {
        Ok(done) => done,
        Err(_) => {
            let _ = child.kill().await;
            feeder.abort();
            return Err(unreadable("it took too long"));
        }
    };
    if status.is_none() {
        let _ = child.kill().await;
    }
    // The child has ended (or been killed), so the feeder ends too: its pipe is closed.
    match feeder.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(ExtractError::Unavailable(format!(
                "reading the file failed: {e}"
            )))
        }
        Err(_) => return Err(ExtractError::Unavailable("reading the file failed".into())),
    }
    let Some(status) = status else {
        return Err(ExtractError::Invalid(format!(
            "{} holds more text than the {} MB a file may have.",
            shorten(filename, 80),
            cap >> 20
        )));
    };
    let message = || String::from_utf8_lossy(&text).into_owned();
    match status.code().map(|c| c as u8) {
        Some(0) => String::from_utf8(text).map_err(|_| unreadable("its text is not UTF-8")),
        Some(EXIT_UNSUPPORTED) => Err(ExtractError::Unsupported(message())),
        Some(EXIT_INVALID) => Err(ExtractError::Invalid(message())),
        _ => {
            let stderr = errors.await.unwrap_or_default();
            log::info!(
                "extraction of {} ended with {status}: {}",
                shorten(filename, 80),
                shorten(stderr.trim(), 300)
            );
            Err(unreadable(&ending(&status, &stderr)))
        }
    }
}

/// Copies `input` into the child's stdin, then closes it. An error reading `input` is
/// returned (the child must not be taken to have read the whole file); the child going
/// away is not an error here (its exit status tells).
async fn feed<S>(mut input: S, mut stdin: tokio::process::ChildStdin) -> std::io::Result<()>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    while let Some(chunk) = input.next().await {
        if stdin.write_all(&chunk?).await.is_err() {
            return Ok(());
        }
    }
    let _ = stdin.shutdown().await;
    Ok(())
}

/// What ended the child, in words for `last_error`.
fn ending(status: &std::process::ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    if stderr.contains("overflowed its stack") {
        return "it nests too deeply".into();
    }
    if stderr.contains("memory allocation") || stderr.contains("capacity overflow") {
        return "it needs too much memory".into();
    }
    match status.signal() {
        Some(libc::SIGXCPU) | Some(libc::SIGKILL) => "it needs too much processing time".into(),
        Some(libc::SIGSEGV) | Some(libc::SIGBUS) => "it nests too deeply".into(),
        Some(libc::SIGABRT) => "it needs too much memory or nests too deeply".into(),
        _ => "the parser failed".into(),
    }
}

/// `text` as a command-line argument: no NUL or other control characters, and short (the
/// child needs the extension; the rest is for its messages).
fn argument(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() <= 200 {
        return clean;
    }
    let ext = clean.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let ext: String = ext.chars().take(16).collect();
    format!("{}….{ext}", clean.chars().take(180).collect::<String>())
}

/// At most `max` characters of `text`, marked when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[derive(Clone, Copy)]
struct ChildLimits {
    address_space: u64,
    cpu_seconds: u64,
    /// The service's pid.
    parent: u32,
}

impl ChildLimits {
    /// In the child, between fork and exec.
    fn apply(self) -> std::io::Result<()> {
        let check = |rc: libc::c_int| {
            if rc < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        };
        let set = |resource, soft: u64, hard: u64| {
            let lim = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            // SAFETY: a plain syscall on a stack value.
            check(unsafe { libc::setrlimit(resource, &lim) })
        };
        set(libc::RLIMIT_AS, self.address_space, self.address_space)?;
        // SIGXCPU at the soft limit, SIGKILL at the hard one.
        set(libc::RLIMIT_CPU, self.cpu_seconds, self.cpu_seconds + 2)?;
        // It writes no files (its output is a pipe) and dumps no core.
        set(libc::RLIMIT_FSIZE, 0, 0)?;
        set(libc::RLIMIT_CORE, 0, 0)?;
        // SAFETY: plain syscalls on integers. The child dies with the service.
        unsafe {
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            if libc::getppid() as u32 != self.parent {
                // The service died before the line above took effect.
                libc::_exit(1);
            }
        }
        Ok(())
    }
}
