//! Running the `signal-aggregator` binary from tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// The running binary; killed and reaped when dropped, so a failing test
/// leaves no process behind.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary with stdout piped and none of its flags' environment variables,
/// so a developer's shell (a `SIGNAL_AGGREGATOR_REDIS_URL`, a `POD_NAMESPACE`)
/// cannot change what a test runs.
pub fn aggregator_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_signal-aggregator"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SIGNAL_AGGREGATOR_") {
            command.env_remove(name);
        }
    }
    command
        .env_remove("POD_NAMESPACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// Starts `command`; returns the process and its stdout.
pub fn spawn(mut command: Command) -> (Running, ChildStdout) {
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    (Running(child), stdout)
}

/// Stdout lines up to and including the first one `last` accepts; panics with
/// what was printed when the binary exits first. The rest of stdout is drained
/// in the background: a closed pipe would fail the binary's later prints.
pub fn lines_until(stdout: ChildStdout, last: impl Fn(&str) -> bool) -> Vec<String> {
    let mut reader = BufReader::new(stdout).lines();
    let mut lines = Vec::new();
    for line in reader.by_ref() {
        let line = line.unwrap();
        let done = last(&line);
        lines.push(line);
        if done {
            std::thread::spawn(move || reader.for_each(drop));
            return lines;
        }
    }
    panic!("the binary exited before printing the expected line: {lines:?}");
}
