//! Child processes the tests start (the local server, the Lambda emulator, function binaries):
//! each is held by a [`ChildGuard`] that kills it on drop, so a failing test never leaves one
//! running, and its output goes to a log file whose tail explains a failure.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// How much of a child's log a failure message shows.
const LOG_TAIL_BYTES: u64 = 4096;

/// A running child process, killed (and reaped) when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Starts `command` with stdout and stderr appended to a fresh log file in the temp dir.
    /// Panics with the program's name when it cannot be started: a test cannot go on without it.
    #[track_caller]
    pub fn spawn(name: &str, command: &mut Command) -> ChildGuard {
        let log_path = std::env::temp_dir().join(format!(
            "e2e-{name}-{}-{:08x}.log",
            std::process::id(),
            rand::random::<u32>()
        ));
        let log = File::create(&log_path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", log_path.display()));
        let log_for_stderr = log
            .try_clone()
            .unwrap_or_else(|error| panic!("cannot share {}: {error}", log_path.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_for_stderr))
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start {name} ({:?}): {error}", command.get_program())
            });
        ChildGuard {
            name: name.to_owned(),
            child,
            log_path,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has already exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The whole log so far (for waiting on a line the child prints).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last few KB of the log, for failure messages.
    pub fn log_tail(&self) -> String {
        let Ok(mut file) = File::open(&self.log_path) else {
            return String::new();
        };
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(LOG_TAIL_BYTES)));
        let mut tail = Vec::new();
        let _ = file.read_to_end(&mut tail);
        String::from_utf8_lossy(&tail).into_owned()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Kill by our own child's id only; an already exited child makes kill fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Keep the log when the test is failing: it is what explains the failure.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log_path);
        }
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago. The OS picks it; another process could
/// take it before our child binds it, which is why the launchers retry on a bind failure.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("the OS hands out a free port on 127.0.0.1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_guard_kills_its_child() {
        let mut guard = ChildGuard::spawn("sleeper", Command::new("sleep").arg("600"));
        assert!(
            guard.exited().is_none(),
            "sleep 600 should still be running"
        );
        let pid = guard.id();
        drop(guard);
        // The child was reaped by the guard: its /proc entry is gone.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_child_log_holds_its_output() {
        let mut guard =
            ChildGuard::spawn("echo", Command::new("sh").args(["-c", "echo hello >&2"]));
        let status = loop {
            if let Some(status) = guard.exited() {
                break status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert!(status.success());
        assert_eq!(guard.log_tail(), "hello\n");
    }

    #[test]
    fn free_ports_are_nonzero_and_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
