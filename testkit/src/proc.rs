//! The one process runner: every process a test starts runs through
//! [`run`] (or [`storm`], built on the same loop) with a timeout, in its own
//! process group, and a hang is reported with the case name.

use std::borrow::BorrowMut;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long the output pipes may stay open after the process ended (or was
/// killed): a grandchild that left the process group can hold them forever.
const PIPE_GRACE: Duration = Duration::from_secs(10);

/// A process that exited (normally or by a signal).
pub struct Finished {
    pub case: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

impl fmt::Debug for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: exit {:?} signal {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.case,
            self.code(),
            self.signal(),
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

/// What became of a run: finished, or killed at the timeout.
pub enum Outcome {
    Finished(Finished),
    Hung {
        case: String,
        stdout: String,
        stderr: String,
        after: Duration,
    },
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Finished(x) => x.fmt(f),
            Outcome::Hung {
                case,
                stdout,
                stderr,
                after,
            } => write!(
                f,
                "HANG: {case} (killed after {after:?})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
            ),
        }
    }
}

impl Outcome {
    pub fn hung(&self) -> bool {
        matches!(self, Outcome::Hung { .. })
    }
    pub fn case(&self) -> &str {
        match self {
            Outcome::Finished(x) => &x.case,
            Outcome::Hung { case, .. } => case,
        }
    }
    pub fn stdout(&self) -> &str {
        match self {
            Outcome::Finished(x) => &x.stdout,
            Outcome::Hung { stdout, .. } => stdout,
        }
    }
    pub fn stderr(&self) -> &str {
        match self {
            Outcome::Finished(x) => &x.stderr,
            Outcome::Hung { stderr, .. } => stderr,
        }
    }
    /// The finished run; panics with the case name (`HANG: case`) and the
    /// output if it hung.
    pub fn finished(&self) -> &Finished {
        match self {
            Outcome::Finished(x) => x,
            Outcome::Hung { .. } => panic!("{self:?}"),
        }
    }
    pub fn into_finished(self) -> Finished {
        match self {
            Outcome::Finished(x) => x,
            Outcome::Hung { .. } => panic!("{self:?}"),
        }
    }
    /// `(exit code, signal)`; panics with the case name on a hang.
    pub fn exit(&self) -> (Option<i32>, Option<i32>) {
        let f = self.finished();
        (f.code(), f.signal())
    }
    /// Panics with the case name unless the process exited 0.
    pub fn expect_success(&self) -> &Self {
        self.expect_code(0)
    }
    /// Panics with the case name unless the process exited with `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        let f = self.finished();
        assert!(
            f.code() == Some(code),
            "FAILED: want exit {code}, got {f:?}"
        );
        self
    }
}

/// Runs `cmd` (stdin from /dev/null, output captured) in its own process
/// group; at `timeout` the whole group is killed and the outcome is `Hung`.
/// `case` names the run in every failure message.
pub fn run(case: impl Into<String>, cmd: impl BorrowMut<Command>, timeout: Duration) -> Outcome {
    run_with(case.into(), cmd, timeout, None, |_, _| false)
}

/// Like [`run`], but once a line of the process's stderr contains `marker`
/// it has only `stall` more to finish before it is killed as `Hung`
/// (`timeout` still bounds the whole run). For a hang that must be told
/// from a slow start: under qemu, on a loaded machine, start-up alone can
/// take longer than the step that hangs takes on a fixed build, so the
/// clock that decides "hung" starts at the step (`marker`), not at spawn.
/// Whether the marker came is in the outcome's stderr.
pub fn run_past_marker(
    case: impl Into<String>,
    cmd: impl BorrowMut<Command>,
    marker: &str,
    stall: Duration,
    timeout: Duration,
) -> Outcome {
    run_with(
        case.into(),
        cmd,
        timeout,
        Some((marker.to_string(), stall)),
        |_, _| false,
    )
}

/// The runner's loop. `tick(pid, first_stdout_line)` is called on every
/// poll while the process runs; it returns whether it did work (then the
/// loop polls again at once instead of sleeping). `stall`: see
/// [`run_past_marker`].
fn run_with(
    case: String,
    mut cmd: impl BorrowMut<Command>,
    timeout: Duration,
    stall: Option<(String, Duration)>,
    mut tick: impl FnMut(u32, Option<&str>) -> bool,
) -> Outcome {
    let cmd = cmd.borrow_mut();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{case}: spawn {cmd:?}: {e}"));
    let first_line: Arc<OnceLock<String>> = Arc::default();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let first = Arc::clone(&first_line);
    let (out_tx, out_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_until(b'\n', &mut buf);
        let _ = first.set(String::from_utf8_lossy(&buf).into_owned());
        let _ = out.read_to_end(&mut buf);
        let _ = out_tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let (err_tx, err_rx) = mpsc::channel();
    let marker_seen: Arc<OnceLock<Instant>> = Arc::default();
    let seen = Arc::clone(&marker_seen);
    let marker = stall.as_ref().map(|(m, _)| m.clone());
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(m) = marker {
            // Line by line until the marker, to time it; then the rest.
            loop {
                let from = buf.len();
                match err.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if String::from_utf8_lossy(&buf[from..]).contains(&m) {
                            let _ = seen.set(Instant::now());
                            break;
                        }
                    }
                }
            }
        }
        let _ = err.read_to_end(&mut buf);
        let _ = err_tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    let pgid = child.id() as i32;
    let collect = |rx: mpsc::Receiver<String>| {
        rx.recv_timeout(PIPE_GRACE)
            .unwrap_or_else(|_| format!("<pipe still open {PIPE_GRACE:?} after the process ended>"))
    };
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let elapsed = start.elapsed();
            // Grandchildren keep the pipes open; make sure they are gone.
            // SAFETY: kill(2) on our own child's process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            return Outcome::Finished(Finished {
                case,
                status,
                stdout: collect(out_rx),
                stderr: collect(err_rx),
                elapsed,
            });
        }
        let stalled = stall
            .as_ref()
            .is_some_and(|(_, d)| marker_seen.get().is_some_and(|t| t.elapsed() > *d));
        if stalled || start.elapsed() > timeout {
            let after = start.elapsed();
            // SAFETY: kill(2) on our own child's process group.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            return Outcome::Hung {
                case,
                stdout: collect(out_rx),
                stderr: collect(err_rx),
                after,
            };
        }
        if !tick(child.id(), first_line.get().map(String::as_str)) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The thread ids of process `pid` (empty once it is gone).
pub fn threads_of(pid: u32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A finished signal storm and how many signals reached a thread.
#[derive(Debug)]
pub struct Storm {
    pub run: Finished,
    pub sent: u64,
}

/// Runs `cmd`, which prints `READY ...` as its first line once its handlers
/// are installed, and from then on tgkill-s `signals` round-robin at every
/// thread until it exits. Panics with the case name on a hang.
pub fn storm(
    case: impl Into<String>,
    cmd: impl BorrowMut<Command>,
    signals: &[i32],
    timeout: Duration,
) -> Storm {
    let mut sent = 0u64;
    let mut k = 0usize;
    let outcome = run_with(case.into(), cmd, timeout, None, |pid, first| {
        if !first.is_some_and(|l| l.starts_with("READY")) {
            return false;
        }
        for tid in threads_of(pid) {
            let sig = signals[k % signals.len()];
            k += 1;
            // SAFETY: tgkill(2) on our own child's threads.
            if unsafe { libc::syscall(libc::SYS_tgkill, pid as i32, tid, sig) } == 0 {
                sent += 1;
            }
        }
        true
    });
    Storm {
        run: outcome.into_finished(),
        sent,
    }
}

/// For tests that want `std::process::Output` (raw bytes): runs `cmd` to
/// completion; past `limit` it is killed and the test fails as a hang
/// naming `case`.
pub fn output(cmd: &mut Command, limit: Duration, case: &str) -> std::process::Output {
    let f = run(case, &mut *cmd, limit).into_finished();
    std::process::Output {
        status: f.status,
        stdout: f.stdout.into_bytes(),
        stderr: f.stderr.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn finished_runs_keep_output_code_and_signal() {
        let o = run(
            "echo",
            sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(20),
        );
        assert_eq!(o.exit(), (Some(3), None));
        assert_eq!((o.stdout(), o.stderr()), ("out\n", "err\n"));
        o.expect_code(3);
        let o = run("self-kill", sh("kill -TERM $$"), Duration::from_secs(20));
        assert_eq!(o.exit(), (None, Some(libc::SIGTERM)));
    }

    #[test]
    fn a_hang_is_killed_and_named() {
        // The sleeping grandchild holds the pipes: killing the group frees them.
        let o = run(
            "the sleeper",
            sh("echo started; sleep 30"),
            Duration::from_millis(300),
        );
        assert!(o.hung(), "{o:?}");
        assert_eq!(o.stdout(), "started\n");
        let msg = std::panic::catch_unwind(|| o.expect_success().stdout().len())
            .expect_err("a hung run must not pass as success");
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.starts_with("HANG: the sleeper"), "{msg}");
    }

    #[test]
    fn a_stall_after_the_marker_is_a_hang() {
        // Slow before the marker (1 s, longer than the stall), then stuck.
        let o = run_past_marker(
            "stuck after the marker",
            sh("sleep 1; echo STEP >&2; sleep 30"),
            "STEP",
            Duration::from_millis(300),
            Duration::from_secs(20),
        );
        assert!(o.hung(), "{o:?}");
        assert_eq!(o.stderr(), "STEP\n");
        let Outcome::Hung { after, .. } = &o else {
            unreachable!()
        };
        assert!(*after >= Duration::from_millis(1300), "{o:?}");
        assert!(*after < Duration::from_secs(15), "{o:?}");
        // Quick after the marker: finished, with the whole stderr.
        let o = run_past_marker(
            "quick after the marker",
            sh("sleep 1; echo STEP >&2; echo done >&2"),
            "STEP",
            // Generous: it finishes at once; a loaded CI machine must not
            // turn two echos into a hang.
            Duration::from_secs(5),
            Duration::from_secs(20),
        );
        assert_eq!(o.exit(), (Some(0), None));
        assert_eq!(o.stderr(), "STEP\ndone\n");
        // No marker: only the overall timeout applies.
        let o = run_past_marker(
            "never gets there",
            sh("sleep 30"),
            "STEP",
            Duration::from_millis(10),
            Duration::from_millis(500),
        );
        assert!(o.hung(), "{o:?}");
    }

    #[test]
    fn storm_starts_at_ready() {
        // The shell ignores SIGUSR1 only from READY on: a signal sent
        // earlier would kill it.
        let s = storm(
            "storm",
            sh("trap '' USR1; echo READY; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"),
            &[libc::SIGUSR1],
            Duration::from_secs(20),
        );
        assert_eq!(s.run.code(), Some(0), "{s:?}");
        assert!(s.sent > 0, "{s:?}");
    }
}
