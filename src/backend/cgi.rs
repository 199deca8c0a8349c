//! The CGI backend (RFC 3875): one run of an executable per event.
//!
//! The event's meta-variables are the child's whole environment, the event body is its stdin
//! and its stdout is read as a CGI response. The child runs in its own process group, so a
//! timeout (or an oversized answer) kills it together with anything it started; whatever is
//! left of the group when the child exits is killed as well, so no helper thread outlives
//! [`CgiBackend::send`]. Its stderr goes to the log, one warning per line.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, Builder};
use std::time::Duration;

use tungstenite::Bytes;

use super::cgi_response::{self, MAX_HEAD};
use crate::events::BackendError;
use crate::reply::Reply;

/// Longest stderr line logged; the rest of the line is dropped.
const MAX_LOG_LINE: usize = 1024;
/// Most stderr lines logged per run; later lines are read and counted, not logged.
const MAX_LOG_LINES: usize = 100;

#[derive(Debug, Clone)]
pub struct CgiBackend {
    program: PathBuf,
    pass_env: Vec<(String, String)>,
    timeout: Duration,
    max_body: usize,
}

impl CgiBackend {
    /// `pass_env`: variables from wscgi's own environment to pass through (`--cgi-env NAME`),
    /// already resolved to (name, value). `max_body`: largest response body accepted
    /// (`--max-message`); the head may add up to [`cgi_response::MAX_HEAD`].
    pub fn new(
        program: PathBuf,
        pass_env: Vec<(String, String)>,
        timeout: Duration,
        max_body: usize,
    ) -> CgiBackend {
        // The child runs in the program's directory, so a relative path must not be resolved
        // against it; a bare name (no `/`) is left to the usual PATH lookup.
        let program = match program.components().nth(1) {
            Some(_) => std::path::absolute(&program).unwrap_or(program),
            None => program,
        };
        CgiBackend {
            program,
            pass_env,
            timeout,
            max_body,
        }
    }

    /// Runs the program once: environment = exactly `params` + `pass_env`, `body` on stdin,
    /// stdout parsed as a CGI response. `log_id` prefixes every stderr line logged.
    pub fn send(
        &self,
        params: &[(String, Vec<u8>)],
        body: &[u8],
        log_id: &str,
    ) -> Result<Reply, BackendError> {
        let mut child = self.command(params).spawn().map_err(|e| {
            BackendError::Unreachable(format!("cannot run {}: {e}", self.program.display()))
        })?;
        let (output, status) = self.run(&mut child, body, log_id)?;
        let head = cgi_response::parse(&output)
            .map_err(|e| BackendError::Invalid(format!("{e} ({status})")))?;
        let body = Bytes::copy_from_slice(output.get(head.body_start..).unwrap_or_default());
        Ok(Reply::from_parts(head.status, head.headers, body))
    }

    fn command(&self, params: &[(String, Vec<u8>)]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env_clear();
        // Event variables come last, so a passed variable cannot overwrite them.
        cmd.envs(self.pass_env.iter().map(|(n, v)| (n, v)));
        cmd.envs(params.iter().map(|(n, v)| (n, OsStr::from_bytes(v))));
        if let Some(dir) = self.program.parent().filter(|d| !d.as_os_str().is_empty()) {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        cmd
    }

    /// Feeds stdin, logs stderr and reads stdout until the child and its group are gone, then
    /// reaps the child. Every path ends with the group killed and the child reaped.
    fn run(
        &self,
        child: &mut Child,
        body: &[u8],
        log_id: &str,
    ) -> Result<(Vec<u8>, ExitStatus), BackendError> {
        // The child leads its own group, so its pid is the group id. Not reaped before the end,
        // so the id cannot be reused by an unrelated group while we may still signal it.
        let pgid = libc::pid_t::try_from(child.id()).unwrap_or(0);
        let (stdin, stdout, stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let limit = MAX_HEAD.saturating_add(self.max_body);
        let timeout = self.timeout;
        let (cancel, cancelled) = mpsc::channel::<()>();
        let mut error = None;
        let mut output = Vec::new();
        let timed_out = thread::scope(|s| {
            let watchdog = Builder::new()
                .name("cgi-watchdog".into())
                .spawn_scoped(s, move || {
                    let fired = cancelled.recv_timeout(timeout) == Err(RecvTimeoutError::Timeout);
                    if fired {
                        kill_group(pgid);
                    }
                    fired
                });
            // The writer runs apart: a child may write lots of output before reading its input.
            // A child that exits without reading gives EPIPE, which is no error of ours.
            let writer = stdin
                .map(|w| Builder::new().spawn_scoped(s, move || feed(w, body)))
                .transpose();
            let logger = stderr
                .map(|e| Builder::new().spawn_scoped(s, move || log_stderr(e, log_id)))
                .transpose();
            let spawn_error = (watchdog.as_ref().err())
                .or(writer.as_ref().err())
                .or(logger.as_ref().err());
            if let Some(e) = spawn_error {
                let e = format!("cannot start thread: {e}");
                error = Some(BackendError::Unreachable(e));
                kill_group(pgid);
            }
            if let Some(stdout) = stdout {
                match stdout
                    .take((limit as u64).saturating_add(1))
                    .read_to_end(&mut output)
                {
                    Ok(_) if output.len() > limit => {
                        error.get_or_insert(BackendError::TooLarge);
                        kill_group(pgid);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let e = BackendError::Invalid(format!("cannot read output: {e}"));
                        error.get_or_insert(e);
                        kill_group(pgid);
                    }
                }
            }
            // The watchdog stays armed while the child runs with its stdout closed.
            wait_exited(pgid);
            drop(cancel);
            let timed_out = watchdog.is_ok_and(|w| w.join().unwrap_or(false));
            // Whatever the child left behind may hold stdin or stderr open: the threads reading
            // and writing those only end once it is gone.
            kill_group(pgid);
            timed_out
        });
        let status = child.wait();
        if timed_out {
            return Err(BackendError::Timeout("cgi".into()));
        }
        if let Some(e) = error {
            return Err(e);
        }
        let status = status.map_err(|e| BackendError::Invalid(format!("cannot wait: {e}")))?;
        Ok((output, status))
    }
}

fn feed(mut stdin: ChildStdin, body: &[u8]) {
    let _ = stdin.write_all(body);
}

/// SIGKILL to the whole process group `pgid` (nothing for an invalid id).
fn kill_group(pgid: libc::pid_t) {
    if pgid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names a group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// Blocks until the child `pid` has exited, leaving it unreaped (`WNOWAIT`).
fn wait_exited(pid: libc::pid_t) {
    let Ok(id) = libc::id_t::try_from(pid) else {
        return;
    };
    loop {
        // SAFETY: siginfo_t is plain data, valid zeroed; waitid only writes into it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOWAIT;
        // SAFETY: `info` is a valid, writable siginfo_t for the duration of the call.
        let r = unsafe { libc::waitid(libc::P_PID, id, &mut info, flags) };
        if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

/// Logs each stderr line (cut to [`MAX_LOG_LINE`]; at most [`MAX_LOG_LINES`]) and drains the
/// rest, so a chatty child never blocks on a full pipe.
fn log_stderr(stderr: ChildStderr, log_id: &str) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::with_capacity(MAX_LOG_LINE);
    let (mut logged, mut dropped) = (0usize, 0usize);
    let mut emit = |line: &mut Vec<u8>| {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        if !text.is_empty() {
            if logged < MAX_LOG_LINES {
                log::warn!("{log_id}: {}", String::from_utf8_lossy(text));
                logged += 1;
            } else {
                dropped += 1;
            }
        }
        line.clear();
    };
    loop {
        let buf = match reader.fill_buf() {
            Ok([]) => break,
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let newline = buf.iter().position(|&b| b == b'\n');
        let end = newline
            .unwrap_or(buf.len())
            .min(MAX_LOG_LINE.saturating_sub(line.len()));
        line.extend_from_slice(buf.get(..end).unwrap_or_default());
        let used = newline.map_or(buf.len(), |n| n + 1);
        reader.consume(used);
        if newline.is_some() {
            emit(&mut line);
        }
    }
    emit(&mut line);
    if dropped > 0 {
        log::warn!("{log_id}: ({dropped} more stderr lines not logged)");
    }
}

#[cfg(test)]
mod tests;
