//! The process behind a command meter (`cmd:` and `tegrastats`). It runs under `sh -c` in a
//! process group of its own: stopping it must reach every process that holds its output (a
//! pipeline's stages, `sudo`, `ssh`), not only the shell, or the pipe stays open and the
//! reader never sees its end.

use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the group has to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_millis(300);

/// A meter command running in its own process group.
pub(super) struct MeterProcess {
    child: Child,
}

impl MeterProcess {
    /// Starts `command` under `sh -c`, leading a new process group; its stdout is the caller's.
    pub(super) fn spawn(command: &str) -> std::io::Result<(MeterProcess, ChildStdout)> {
        let mut sh = Command::new("sh");
        // No stdin: in a group of its own the meter is in the terminal's background, where
        // reading the terminal would stop it.
        sh.args(["-c", command]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut sh, 0);
        let mut child = sh.spawn()?;
        let stdout = child.stdout.take().expect("piped");
        Ok((MeterProcess { child }, stdout))
    }

    /// Ends the whole group: SIGTERM so a meter may exit cleanly, SIGKILL for whatever did not,
    /// then the shell is reaped. The group is signalled even when the shell has exited, for the
    /// processes it left holding the pipe; its id is not reused while any of them lives.
    pub(super) fn terminate(&mut self) {
        let group = self.child.id();
        signal_group(&mut self.child, group, Signal::Term);
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(5));
        }
        signal_group(&mut self.child, group, Signal::Kill);
        let _ = self.child.wait();
    }
}

enum Signal {
    Term,
    Kill,
}

/// Sends `signal` to every process of the group `group` (where groups exist; elsewhere the
/// child alone is killed).
#[cfg(unix)]
fn signal_group(_child: &mut Child, group: u32, signal: Signal) {
    let signal = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    let Ok(group) = libc::pid_t::try_from(group) else { return };
    // SAFETY: kill(2) takes plain integers; a negative pid names the process group. A group
    // already gone gives ESRCH, which is nothing to act on.
    unsafe {
        libc::kill(-group, signal);
    }
}

#[cfg(not(unix))]
fn signal_group(child: &mut Child, _group: u32, _signal: Signal) {
    let _ = child.kill();
}

/// Joins `handle` if it finishes within `timeout`; otherwise leaves it running: a reader
/// blocked on a pipe that something outside the group still holds must not hold the run up.
pub(super) fn join_within(handle: JoinHandle<()>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !handle.is_finished() {
        if Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = handle.join();
}
