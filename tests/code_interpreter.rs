//! The local code-interpreter executor against the real sandbox (bubblewrap and Debian's
//! Python, which scripts/test.sh installs): state, errors, timeouts, limits, isolation,
//! files, images, lost sessions.

use assistants::code_interpreter::local::{LocalConfig, LocalExecutor};
use assistants::code_interpreter::{CodeExecutor, ExecError, SessionId, SessionKey, SessionOpen};
use bytes::Bytes;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CELL: Duration = Duration::from_secs(60);

/// An executor working under a fresh DATA_DIR-like directory (`<tmp>/data`).
struct Lab {
    executor: LocalExecutor,
    data_dir: PathBuf,
    key: SessionKey,
    _tmp: tempfile::TempDir,
}

fn lab_with(configure: impl FnOnce(&mut LocalConfig)) -> Lab {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    std::fs::create_dir_all(data_dir.join("objects")).unwrap();
    let mut cfg = LocalConfig {
        protected_paths: vec![data_dir.clone()],
        ..LocalConfig::default()
    };
    configure(&mut cfg);
    let executor =
        LocalExecutor::new(cfg).expect("the local executor starts (is bubblewrap installed?)");
    Lab {
        executor,
        data_dir,
        key: SessionKey::random(),
        _tmp: tmp,
    }
}

fn lab() -> Lab {
    lab_with(|_| {})
}

impl Lab {
    async fn session(&self, thread: &str) -> SessionId {
        let id = self.key.session_id("default", thread);
        assert_eq!(
            self.executor.open_session(&id).await.unwrap(),
            SessionOpen::Created
        );
        id
    }

    async fn run(&self, id: &SessionId, code: &str) -> assistants::code_interpreter::CellOutput {
        self.executor
            .execute(id, code, CELL)
            .await
            .unwrap_or_else(|e| panic!("cell {code:?} failed: {e}"))
    }
}

fn process_exists(pid: u32) -> bool {
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

#[tokio::test]
async fn the_self_test_proves_no_network_no_host_files_no_secrets() {
    let lab = lab();
    let report = lab.executor.self_test().await.expect("self-test passes");
    assert!(report.checks.len() >= 8, "{:?}", report.checks);
    assert!(report.versions.contains("numpy"), "{}", report.versions);
    // The probe session is gone again.
    assert_eq!(lab.executor.open_sessions(), 0);
}

#[tokio::test]
async fn state_persists_between_cells_of_a_session() {
    let lab = lab();
    let id = lab.session("thread_state").await;
    let first = lab.run(&id, "x = 41\nimport math").await;
    assert!(first.error.is_none() && first.result.is_none());
    let second = lab.run(&id, "x + 1").await;
    assert_eq!(second.result.as_deref(), Some("42"));
    let third = lab.run(&id, "print(math.pi > 3); y = [x] * 2\ny").await;
    assert_eq!(third.logs, "True\n");
    assert_eq!(third.result.as_deref(), Some("[41, 41]"));
    assert_eq!(
        lab.executor.open_session(&id).await.unwrap(),
        SessionOpen::Existing
    );
    assert_eq!(lab.run(&id, "_").await.result.as_deref(), Some("[41, 41]"));
}

#[tokio::test]
async fn an_exception_is_a_normal_result_with_its_traceback() {
    let lab = lab();
    let id = lab.session("thread_error").await;
    let out = lab
        .run(&id, "print('before')\ndef f(d):\n    return 1 / d\nf(0)")
        .await;
    assert_eq!(out.logs, "before\n");
    let error = out.error.expect("the cell's exception");
    assert_eq!(error.name, "ZeroDivisionError");
    assert_eq!(error.message, "division by zero");
    assert!(error
        .traceback
        .starts_with("Traceback (most recent call last):"));
    assert!(error.traceback.contains("line 4"), "{}", error.traceback);
    assert!(
        error.traceback.contains("return 1 / d"),
        "{}",
        error.traceback
    );
    assert!(
        !error.traceback.contains("driver.py"),
        "{}",
        error.traceback
    );
    let syntax = lab.run(&id, "def broken(:\n  pass").await;
    assert_eq!(syntax.error.unwrap().name, "SyntaxError");
    let exit = lab.run(&id, "import sys; sys.exit(3)").await;
    assert_eq!(exit.error.unwrap().name, "SystemExit");
    // The session is still there.
    assert_eq!(lab.run(&id, "f").await.error, None);
}

#[tokio::test]
async fn a_timeout_interrupts_the_cell_and_the_session_keeps_its_state() {
    let lab = lab();
    let id = lab.session("thread_timeout").await;
    lab.run(&id, "kept = 'yes'").await;
    let started = Instant::now();
    let out = lab
        .executor
        .execute(&id, "import time\ntime.sleep(60)", Duration::from_secs(2))
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let error = out.error.expect("a TimeoutError");
    assert_eq!(error.name, "TimeoutError");
    assert!(error.message.contains("2 seconds"), "{}", error.message);
    assert_eq!(lab.run(&id, "kept").await.result.as_deref(), Some("'yes'"));
}

#[tokio::test]
async fn a_cell_that_ignores_the_timeout_is_killed_and_its_session_is_gone() {
    let lab = lab();
    let id = lab.session("thread_hard_timeout").await;
    let pid = lab.executor.sandbox_pid(&id).await.unwrap();
    let started = Instant::now();
    let err = lab
        .executor
        .execute(
            &id,
            "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass",
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert_eq!(err, ExecError::Timeout(Duration::from_secs(2)));
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert!(!process_exists(pid), "the sandbox was killed");
    assert!(matches!(
        lab.executor.execute(&id, "1", CELL).await,
        Err(ExecError::SessionLost(_))
    ));
    assert_eq!(
        lab.executor.open_session(&id).await.unwrap(),
        SessionOpen::Created
    );
    assert_eq!(lab.run(&id, "1 + 1").await.result.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_other_sessions_carry_on() {
    let lab = lab();
    let bystander = lab.session("thread_bystander").await;
    lab.run(&bystander, "z = 7").await;
    let id = lab.session("thread_fork_bomb").await;
    let out = lab
        .executor
        .execute(
            &id,
            "import os\nwhile True:\n    os.fork()",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    let error = out.error.expect("fork fails");
    assert_eq!(error.name, "BlockingIOError", "{error:?}");
    // The session itself still answers, as does the other one; the host can start processes.
    assert_eq!(lab.run(&id, "2 * 3").await.result.as_deref(), Some("6"));
    // Nothing of the bomb runs on after its cell (its processes would burn the host's CPU
    // until the session ended): only bwrap's init and the driver are left (killed processes
    // can take a moment to be reaped on a busy machine), and the session can fork again.
    let left = "import os\nsorted(int(p) for p in os.listdir('/proc') if p.isdigit())";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = lab.run(&id, left).await.result;
        if seen.as_deref() == Some("[1, 2]") {
            break;
        }
        assert!(Instant::now() < deadline, "the bomb runs on: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And it stays that way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lab.run(&id, left).await.result.as_deref(), Some("[1, 2]"));
    let forked = "import subprocess\nsubprocess.run(['true']).returncode";
    assert_eq!(lab.run(&id, forked).await.result.as_deref(), Some("0"));
    assert_eq!(lab.run(&bystander, "z").await.result.as_deref(), Some("7"));
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());

    // Children left sleeping count against their session's limit only, and end with their
    // cell.
    let sleepers = lab.session("thread_sleepers").await;
    let spawned = lab
        .run(
            &sleepers,
            "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(120)\n            os._exit(0)\n        n += 1\nexcept OSError:\n    pass\nn",
        )
        .await;
    let n: u32 = spawned.result.unwrap().parse().unwrap();
    assert!(n > 10 && n < 64, "{n}");
    assert_eq!(
        lab.run(&sleepers, left).await.result.as_deref(),
        Some("[1, 2]")
    );
    assert_eq!(
        lab.run(&bystander, "z * 2").await.result.as_deref(),
        Some("14")
    );
    let pid = lab.executor.sandbox_pid(&sleepers).await.unwrap();
    lab.executor.end_session(&sleepers).await.unwrap();
    assert!(!process_exists(pid));
    assert_eq!(
        lab.run(&bystander, "z + 1").await.result.as_deref(),
        Some("8")
    );
}

#[tokio::test]
async fn a_memory_hog_gets_a_memory_error_and_the_session_survives() {
    let lab = lab_with(|c| c.memory_bytes = 1 << 30);
    let id = lab.session("thread_memory").await;
    let once = lab.run(&id, "x = bytearray(8 * 1024**3)").await;
    assert_eq!(once.error.unwrap().name, "MemoryError");
    let growing = lab
        .run(
            &id,
            "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024**2))",
        )
        .await;
    assert_eq!(growing.error.unwrap().name, "MemoryError");
    let after = lab.run(&id, "n = len(blocks)\ndel blocks\nn").await;
    let n: u32 = after.result.unwrap().parse().unwrap();
    assert!(n < 16, "at most 1 GiB was allocated: {n} blocks");
}

#[tokio::test]
async fn code_cannot_reach_the_network() {
    let lab = lab();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
    let id = lab.session("thread_network").await;
    let code = r#"
import socket, urllib.request
results = []
for f in [lambda: socket.create_connection(('127.0.0.1', PORT), timeout=3),
          lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
          lambda: socket.getaddrinfo('pypi.org', 443),
          lambda: urllib.request.urlopen('http://127.0.0.1:PORT/', timeout=3)]:
    try:
        f()
        results.append('connected')
    except Exception as e:
        results.append(type(e).__name__)
results
"#
    .replace("PORT", &port.to_string());
    let out = lab.run(&id, &code).await;
    let results = out.result.clone().unwrap_or_else(|| panic!("{out:?}"));
    assert!(!results.contains("connected"), "{results}");
    assert!(!accepted.is_finished() || !accepted.await.unwrap());
}

#[tokio::test]
async fn host_files_are_not_readable_from_code_or_through_planted_links() {
    let lab = lab();
    let secret = lab.data_dir.join("objects").join("t").join("secret.json");
    std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
    std::fs::write(&secret, b"{\"key\": \"host secret\"}").unwrap();
    let id = lab.session("thread_files").await;
    let code = r#"
import os
seen = {}
for p in [SECRET, DATA, '/etc/shadow', '/etc/passwd', '/root', '/proc/1/root/etc/shadow']:
    try:
        with open(p) as f:
            seen[p] = f.read()[:20]
    except Exception as e:
        seen[p] = type(e).__name__
os.symlink(SECRET, '/mnt/data/leak.json')
os.symlink('/etc', '/mnt/data/etc')
sorted(os.listdir('/')), seen
"#
    .replace("SECRET", &format!("{:?}", secret.to_str().unwrap()))
    .replace("DATA", &format!("{:?}", lab.data_dir.to_str().unwrap()));
    let out = lab.run(&id, &code).await;
    let result = out.result.clone().unwrap_or_else(|| panic!("{out:?}"));
    assert!(!result.contains("host secret"), "{result}");
    assert!(!result.contains("root:"), "{result}");
    assert!(
        !result.contains("'root'") && !result.contains("'home'"),
        "{result}"
    );
    // Nothing inside names DATA_DIR or the session (issue 17, item 14).
    let named = lab
        .run(
            &id,
            "open('/proc/self/mountinfo').read() + open('/proc/1/cmdline').read()",
        )
        .await
        .result
        .unwrap();
    assert!(named.contains("/mnt/data"), "{named}");
    for host in [lab.data_dir.to_str().unwrap(), &id.as_str()[..16]] {
        assert!(!named.contains(host), "{host} named inside: {named}");
    }
    // The planted links are neither listed nor followed by the host.
    assert!(lab.executor.list_files(&id).await.unwrap().is_empty());
    for path in ["leak.json", "etc/passwd", "etc/shadow"] {
        assert!(matches!(
            lab.executor.download(&id, path, 1 << 20).await,
            Err(ExecError::NotFound(_))
        ));
    }
    assert!(matches!(
        lab.executor
            .download(&id, "../../objects/t/secret.json", 1 << 20)
            .await,
        Err(ExecError::InvalidInput(_))
    ));
    // An upload over a planted link replaces the link, not the host file.
    lab.executor
        .upload(&id, "leak.json", Bytes::from_static(b"uploaded"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&secret).unwrap(),
        b"{\"key\": \"host secret\"}"
    );
}

#[tokio::test]
async fn uploaded_files_are_visible_and_written_files_are_listed_and_downloadable() {
    let lab = lab();
    let id = lab.session("thread_io").await;
    let csv = "month,total\n1,10\n2,30\n3,20\n";
    let info = lab
        .executor
        .upload(&id, "sales.csv", Bytes::from(csv))
        .await
        .unwrap();
    assert_eq!(
        (info.path.as_str(), info.bytes),
        ("sales.csv", csv.len() as u64)
    );
    let out = lab
        .run(
            &id,
            "import os, pandas as pd\n\
             df = pd.read_csv('/mnt/data/sales.csv')\n\
             os.makedirs('/mnt/data/out', exist_ok=True)\n\
             df.assign(double=df.total * 2).to_csv('/mnt/data/out/summary.csv', index=False)\n\
             open('notes.txt', 'w').write('relative paths land in /mnt/data')\n\
             int(df.total.sum())",
        )
        .await;
    assert_eq!(out.error, None);
    assert_eq!(out.result.as_deref(), Some("60"));
    let written: Vec<(&str, u64)> = out
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.bytes))
        .collect();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written.contains(&("notes.txt", 32)), "{written:?}");
    assert!(written.iter().any(|(p, _)| *p == "out/summary.csv"));
    let summary = lab
        .executor
        .download(&id, "out/summary.csv", 1 << 20)
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&summary).unwrap(),
        "month,total,double\n1,10,20\n2,30,60\n3,20,40\n"
    );
    assert!(matches!(
        lab.executor.download(&id, "out/summary.csv", 10).await,
        Err(ExecError::FileTooLarge(10))
    ));
    let all: Vec<String> = lab
        .executor
        .list_files(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(all, ["notes.txt", "out/summary.csv", "sales.csv"]);
    // A cell that changes nothing reports no files; one that rewrites a file reports it.
    assert!(lab.run(&id, "1").await.files.is_empty());
    let rewrite = lab.run(&id, "open('notes.txt', 'a').write('!')").await;
    assert_eq!(rewrite.files.len(), 1);
    assert!(matches!(
        lab.executor.upload(&id, "../escape", Bytes::new()).await,
        Err(ExecError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn matplotlib_figures_become_png_images() {
    let lab = lab();
    lab.executor.self_test().await.unwrap(); // warms the font cache, as at start-up
    let id = lab.session("thread_plot").await;
    let out = lab
        .run(
            &id,
            "import matplotlib.pyplot as plt\n\
             plt.plot([1, 2, 3], [3, 1, 2])\n\
             plt.title('first')\n\
             plt.show()\n\
             plt.figure()\n\
             plt.bar(['a', 'b'], [1, 2])\n\
             plt.savefig('/mnt/data/bars.png')",
        )
        .await;
    assert_eq!(out.error, None, "{}", out.logs);
    assert_eq!(out.images.len(), 2, "one shown, one left open");
    for image in &out.images {
        assert!(image.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(image.len() > 1000);
    }
    assert_eq!(out.files.len(), 1);
    assert_eq!(out.files[0].path, "bars.png");
    // Shown figures are closed: the next cell starts with none.
    assert!(lab
        .run(&id, "len(plt.get_fignums())")
        .await
        .images
        .is_empty());
}

#[tokio::test]
async fn a_killed_session_is_reported_lost_and_a_new_one_works() {
    let lab = lab();
    let id = lab.session("thread_killed").await;
    lab.run(&id, "x = 1").await;
    let pid = lab.executor.sandbox_pid(&id).await.unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = lab.executor.execute(&id, "x", CELL).await.unwrap_err();
    assert!(matches!(err, ExecError::SessionLost(_)), "{err:?}");
    assert_eq!(
        lab.executor.open_session(&id).await.unwrap(),
        SessionOpen::Created
    );
    let fresh = lab.run(&id, "x").await;
    assert_eq!(fresh.error.unwrap().name, "NameError");

    // A cell that ends its own process loses the session the same way.
    let err = lab
        .executor
        .execute(&id, "import os; os._exit(0)", CELL)
        .await
        .unwrap_err();
    assert!(matches!(err, ExecError::SessionLost(_)), "{err:?}");
    // And a session that died between cells is started again by open_session.
    lab.session("thread_killed_2").await;
    let other = lab.key.session_id("default", "thread_killed_2");
    let pid = lab.executor.sandbox_pid(&other).await.unwrap();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        lab.executor.open_session(&other).await.unwrap(),
        SessionOpen::Created
    );
}

#[tokio::test]
async fn two_sessions_are_isolated_from_each_other() {
    let lab = lab();
    let a = lab.session("thread_a").await;
    let b = lab.session("thread_b").await;
    lab.run(&a, "secret = 'a'\nopen('a.txt', 'w').write('a')")
        .await;
    let from_b = lab
        .run(
            &b,
            "import os\nos.path.exists('/mnt/data/a.txt'), 'secret' in globals()",
        )
        .await;
    assert_eq!(from_b.result.as_deref(), Some("(False, False)"));
    assert!(lab.executor.list_files(&b).await.unwrap().is_empty());
    assert!(matches!(
        lab.executor.download(&b, "a.txt", 100).await,
        Err(ExecError::NotFound(_))
    ));
    // Different tenants get different sessions for the same thread id.
    assert_ne!(
        lab.key.session_id("tenant-1", "thread_a"),
        lab.key.session_id("tenant-2", "thread_a")
    );
}

#[tokio::test]
async fn output_is_interleaved_in_order_and_capped() {
    let lab = lab_with(|c| c.max_log_bytes = 100_000);
    let id = lab.session("thread_output").await;
    let out = lab
        .run(
            &id,
            "import sys, os\nprint('one')\nsys.stderr.write('two\\n')\nos.system('echo three')\nprint('four')",
        )
        .await;
    assert_eq!(out.logs, "one\ntwo\nthree\nfour\n");
    let big = lab.run(&id, "print('x' * 300_000)").await;
    assert!(big.logs_truncated);
    assert_eq!(big.logs.len(), 100_000);
    // The next cell's output is its own.
    assert_eq!(lab.run(&id, "print('next')").await.logs, "next\n");
}

#[tokio::test]
async fn idle_sessions_are_reaped_and_the_least_recently_used_makes_room() {
    let lab = lab_with(|c| {
        c.idle_timeout = Duration::from_secs(1);
        c.max_sessions = 2;
    });
    let a = lab.session("thread_idle_a").await;
    let b = lab.session("thread_idle_b").await;
    lab.run(&b, "1").await;
    let c = lab.session("thread_idle_c").await;
    assert!(matches!(
        lab.executor.execute(&a, "1", CELL).await,
        Err(ExecError::SessionLost(_))
    ));
    assert_eq!(lab.executor.open_sessions(), 2);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(lab.executor.open_sessions(), 0);
    assert!(matches!(
        lab.executor.execute(&c, "1", CELL).await,
        Err(ExecError::SessionLost(_))
    ));
}

#[tokio::test]
async fn calls_on_a_session_never_opened_are_session_lost() {
    let lab = lab();
    let id = lab.key.session_id("default", "thread_never");
    for result in [
        lab.executor.execute(&id, "1", CELL).await.map(|_| ()),
        lab.executor
            .upload(&id, "a", Bytes::new())
            .await
            .map(|_| ()),
        lab.executor.list_files(&id).await.map(|_| ()),
        lab.executor.download(&id, "a", 1).await.map(|_| ()),
    ] {
        assert!(matches!(result, Err(ExecError::SessionLost(_))));
    }
    lab.executor.end_session(&id).await.unwrap();
}

#[tokio::test]
async fn nothing_of_the_service_environment_enters_the_sandbox() {
    let lab = lab();
    let id = lab.session("thread_env").await;
    let out = lab
        .run(
            &id,
            "import os\nenv = {}\nfor pid in os.listdir('/proc'):\n    if pid.isdigit():\n        try:\n            env[pid] = open('/proc/%s/environ' % pid, 'rb').read().decode()\n        except OSError as e:\n            env[pid] = type(e).__name__\nsorted(os.environ), env",
        )
        .await;
    let result = out.result.unwrap();
    assert!(
        result.starts_with("(['HOME', 'LANG', 'MPLBACKEND', 'MPLCONFIGDIR', 'PATH', 'PWD']"),
        "{result}"
    );
    let host_path = std::env::var("PATH").unwrap();
    assert!(!result.contains(&host_path), "{result}");
    assert!(!result.contains("CARGO"), "{result}");
}

#[cfg(target_arch = "x86_64")] // the syscall numbers below are x86_64's
#[tokio::test]
async fn the_seccomp_filter_denies_escape_routes_and_threads_still_work() {
    let lab = lab();
    let id = lab.session("thread_seccomp").await;
    // x86_64 numbers; the x32 one is getpid with the x32 bit.
    let code = r#"
import ctypes, errno, os, socket, threading
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(nr, *args):
    rc = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return errno.errorcode.get(ctypes.get_errno(), '?') if rc == -1 else 'allowed'
calls = {
    'ptrace': errno_of(101, 0, 0, 0, 0),
    'unshare_user': errno_of(272, 0x10000000),
    'clone_newns': errno_of(56, 0x00020000 | 17, 0, 0, 0, 0),
    'clone3': errno_of(435, 0, 0),
    'keyctl': errno_of(250, 0, 0),
    'bpf': errno_of(321, 0, 0, 0),
    'userfaultfd': errno_of(323, 0),
    'perf_event_open': errno_of(298, 0, 0, -1, -1, 0),
    'io_uring_setup': errno_of(425, 1, 0),
    'personality': errno_of(135, 0xffffffff),
    'mount': errno_of(165, 0, 0, 0, 0, 0),
    'x32_getpid': errno_of(0x40000000 | 39),
}
for family in ('AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_PACKET'):
    try:
        socket.socket(getattr(socket, family), socket.SOCK_DGRAM if family != 'AF_NETLINK' else socket.SOCK_RAW)
        calls[family] = 'allowed'
    except OSError as e:
        calls[family] = errno.errorcode.get(e.errno, '?')
a, b = socket.socketpair()
calls['unix_socketpair'] = 'allowed'
out = []
t = threading.Thread(target=lambda: out.append(sum(range(10))))
t.start(); t.join()
import numpy
calls['thread'] = out[0]
calls['numpy'] = int(numpy.arange(4).sum())
calls
"#;
    let out = lab.run(&id, code).await;
    let calls = out.result.clone().unwrap_or_else(|| panic!("{out:?}"));
    for expected in [
        "'ptrace': 'EPERM'",
        "'unshare_user': 'EPERM'",
        "'clone_newns': 'EPERM'",
        "'clone3': 'ENOSYS'",
        "'keyctl': 'EPERM'",
        "'bpf': 'EPERM'",
        "'userfaultfd': 'EPERM'",
        "'perf_event_open': 'EPERM'",
        "'io_uring_setup': 'EPERM'",
        "'personality': 'EPERM'",
        "'mount': 'EPERM'",
        "'x32_getpid': 'ENOSYS'",
        "'AF_INET': 'EAFNOSUPPORT'",
        "'AF_INET6': 'EAFNOSUPPORT'",
        "'AF_NETLINK': 'EAFNOSUPPORT'",
        "'AF_PACKET': 'EAFNOSUPPORT'",
        "'unix_socketpair': 'allowed'",
        "'thread': 45",
        "'numpy': 6",
    ] {
        assert!(calls.contains(expected), "{expected} in {calls}");
    }
}

#[tokio::test]
async fn memory_is_bounded_per_session_not_only_per_process() {
    let lab = lab_with(|c| c.memory_bytes = 512 << 20);
    if unsafe { libc::geteuid() } != 0 {
        // Unprivileged, only a delegated cgroup v2 tree would do; the self-test reports it.
        let report = lab.executor.self_test().await.unwrap();
        assert_eq!(
            lab.executor.session_memory_bounded(),
            !report
                .checks
                .iter()
                .any(|c| c.starts_with("no writable cgroup"))
        );
        return;
    }
    // As root (CI), the session gets a memory cgroup.
    assert!(lab.executor.session_memory_bounded());
    let bystander = lab.session("thread_memory_bystander").await;
    lab.run(&bystander, "w = 'still here'").await;
    let id = lab.session("thread_memory_fan_out").await;
    // Four processes of 300 MB each: every one is within its RLIMIT_AS, their sum is not
    // within the session's 512 MB.
    let code = r#"
import os
kids = []
for i in range(4):
    pid = os.fork()
    if pid == 0:
        b = bytearray(300 * 2**20)
        for j in range(0, len(b), 4096):
            b[j] = 1
        os._exit(0)
    kids.append(pid)
[os.WTERMSIG(s) if os.WIFSIGNALED(s) else 0 for s in (os.waitpid(p, 0)[1] for p in kids)]
"#;
    match lab.executor.execute(&id, code, CELL).await {
        Ok(out) => {
            let killed = out.result.unwrap_or_else(|| panic!("{}", out.logs));
            assert!(killed.contains('9'), "some child was OOM-killed: {killed}");
        }
        // The OOM killer may pick the driver itself: the session is then lost, and only it.
        Err(ExecError::SessionLost(_)) => {}
        Err(other) => panic!("{other:?}"),
    }
    assert_eq!(
        lab.run(&bystander, "w").await.result.as_deref(),
        Some("'still here'")
    );
}

/// A descriptor the service holds without close-on-exec (inherited from whoever started
/// it) does not reach the sandbox: the cell sees its own pipes only.
#[tokio::test]
async fn no_descriptor_of_the_service_reaches_the_sandbox() {
    let lab = lab();
    let secret = lab.data_dir.join("inherited.txt");
    std::fs::write(&secret, b"inherited host secret").unwrap();
    let path = std::ffi::CString::new(secret.to_str().unwrap()).unwrap();
    // Without O_CLOEXEC, as a supervisor's descriptor would be.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    let id = lab.session("thread_fds").await;
    let out = lab
        .run(
            &id,
            "import os\n\
             seen = {}\n\
             for f in sorted(os.listdir('/proc/self/fd'), key=int):\n\
             \x20   try:\n\
             \x20       seen[int(f)] = os.pread(int(f), 100, 0)\n\
             \x20   except OSError as e:\n\
             \x20       seen[int(f)] = type(e).__name__\n\
             sorted(seen), seen",
        )
        .await;
    unsafe { libc::close(fd) };
    let result = out.result.clone().unwrap_or_else(|| panic!("{out:?}"));
    assert!(!result.contains("inherited host secret"), "{result}");
    // stdin, the log pipe (1, 2), the driver's two protocol pipes, and the listing's own.
    assert!(result.starts_with("([0, 1, 2, 3, 4, 5]"), "{result}");
}

/// Per-tenant quotas: a tenant that needs room ends its own least recently used idle
/// session, never another tenant's; with all its sessions running code it is told so at
/// once, while another tenant still gets its share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_makes_room_only_from_its_own_idle_sessions() {
    let lab = std::sync::Arc::new(lab_with(|c| {
        c.max_sessions = 4;
        c.tenant_sessions = 2;
    }));
    let open = |tenant: &str, thread: &str| {
        let id = lab.key.session_id(tenant, thread);
        let lab = lab.clone();
        async move { (lab.executor.open_session(&id).await, id) }
    };
    let (opened, a1) = open("tenant-a", "a1").await;
    assert_eq!(opened.unwrap(), SessionOpen::Created);
    lab.run(&a1, "x = 1").await;
    let mut b = Vec::new();
    for thread in ["b1", "b2", "b3"] {
        let (opened, id) = open("tenant-b", thread).await;
        assert_eq!(opened.unwrap(), SessionOpen::Created);
        b.push(id);
    }
    // B's third session took the place of B's first, not of A's.
    assert!(matches!(
        lab.executor.execute(&b[0], "1", CELL).await,
        Err(ExecError::SessionLost(_))
    ));
    assert_eq!(lab.run(&a1, "x").await.result.as_deref(), Some("1"));

    // B's two sessions busy: B gets no third at once, A gets its second.
    let busy: Vec<_> = b[1..]
        .iter()
        .map(|id| {
            let (lab, id) = (lab.clone(), id.clone());
            tokio::spawn(async move { lab.run(&id, "import time\ntime.sleep(4)\n'slept'").await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = Instant::now();
    let (opened, _) = open("tenant-b", "b4").await;
    match opened {
        Err(ExecError::Busy(why)) => assert!(why.contains("running code"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(1), "it waited");
    let (opened, a2) = open("tenant-a", "a2").await;
    assert_eq!(opened.unwrap(), SessionOpen::Created);
    assert_eq!(lab.run(&a2, "2").await.result.as_deref(), Some("2"));
    assert_eq!(lab.run(&a1, "x").await.result.as_deref(), Some("1"));
    for task in busy {
        assert_eq!(task.await.unwrap().result.as_deref(), Some("'slept'"));
    }
    assert_eq!(lab.executor.open_sessions(), 4);
}
