//! The process behind a command meter (`cmd:` and `tegrastats`). It runs under `sh -c` in a
//! process group of its own: stopping it must reach every process that holds its output (a
//! pipeline's stages, `sudo`, `ssh`), not only the shell, or the pipe stays open and the
//! reader never sees its end. Its last stderr lines are kept to say why it died.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the group has to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_millis(300);
/// How long a meter whose output ended has to exit, and its stderr to be read, before its
/// status is judged.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// The stderr kept for the message: the last lines, each cut short.
const STDERR_TAIL_LINES: usize = 5;
const STDERR_LINE_CHARS: usize = 200;

/// A meter command running in its own process group.
pub(super) struct MeterProcess {
    command: String,
    child: Child,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl MeterProcess {
    /// Starts `command` under `sh -c`, leading a new process group; its stdout is the caller's.
    pub(super) fn spawn(command: &str) -> std::io::Result<(MeterProcess, ChildStdout)> {
        let mut sh = Command::new("sh");
        // No stdin: in a group of its own the meter is in the terminal's background, where
        // reading the terminal would stop it.
        sh.args(["-c", command]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut sh, 0);
        let mut child = sh.spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let stderr_tail = Arc::<Mutex<VecDeque<String>>>::default();
        let tail = stderr_tail.clone();
        let stderr_reader = Some(std::thread::spawn(move || keep_tail(stderr, &tail)));
        Ok((MeterProcess { command: command.to_string(), child, stderr_tail, stderr_reader }, stdout))
    }

    /// Why the command failed, when it has exited by itself with a failing status. A command
    /// whose output has ended (`output_ended`) is given a moment to exit first.
    pub(super) fn failure(&mut self, output_ended: bool) -> Option<String> {
        let deadline = Instant::now() + if output_ended { EXIT_GRACE } else { Duration::ZERO };
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                _ => return None,
            }
        };
        if status.success() {
            return None;
        }
        // The stderr pipe closes with the command (unless something it started holds it).
        if let Some(reader) = self.stderr_reader.take() {
            join_within(reader, EXIT_GRACE);
        }
        let tail: Vec<String> = self.stderr_tail.lock().expect("meter stderr").iter().cloned().collect();
        let said = if tail.is_empty() { "nothing on stderr".to_string() } else { tail.join(" | ") };
        Some(format!("the meter command `{}` {}: {said}", self.command, describe(status)))
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

/// "exited with status N" or "was killed by signal N".
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return format!("was killed by signal {signal}");
    }
    match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => format!("exited ({status})"),
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

/// Keeps the last [`STDERR_TAIL_LINES`] lines of `stderr`, each at most
/// [`STDERR_LINE_CHARS`] characters, however much the command writes.
fn keep_tail(stderr: impl Read, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        // Bounded reads: a line longer than this arrives in pieces, each cut short below.
        match (&mut reader).take(4096).read_until(b'\n', &mut bytes) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&bytes);
        let line: String = text.trim().chars().take(STDERR_LINE_CHARS).collect();
        if line.is_empty() {
            continue;
        }
        let mut tail = tail.lock().expect("meter stderr");
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
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
