//! The suite's child processes (`switchboard simulate`, `switchboard
//! serve`): spawned with stdout and stderr in a log file, stdout also
//! read line by line, stopped with SIGTERM (then SIGKILL) when the suite is done with
//! them, and also when it fails or panics, since [`Child`] stops its
//! process when dropped.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a child gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(15);

/// A running child process, stopped when dropped.
pub struct Child {
    name: String,
    inner: std::process::Child,
    log: PathBuf,
    lines: mpsc::Receiver<String>,
    stopped: bool,
}

impl Child {
    /// Spawns `command` as `name`, its output appended to `log`.
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Result<Self, String> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let mut inner = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("{name}: cannot start {command:?}: {e}"))?;
        let stdout = inner.stdout.take().ok_or("no stdout pipe")?;
        let mut copy = std::fs::OpenOptions::new()
            .append(true)
            .open(log)
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let (tx, lines) = mpsc::sync_channel(256);
        // Drains stdout for the child's whole life, so it never blocks on
        // a full pipe: every line goes to the log (the server logs to
        // stdout), the first ones also to `announced`.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(copy, "{line}");
                let _ = tx.try_send(line);
            }
        });
        Ok(Self {
            name: name.to_owned(),
            inner,
            log: log.to_owned(),
            lines,
            stopped: false,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.id()
    }

    /// What follows `prefix` on the first line the child prints that
    /// starts with it (how a child says where it listens); an error with
    /// the end of its log if it exits first or `deadline` passes.
    pub async fn announced(&mut self, prefix: &str, deadline: Instant) -> Result<String, String> {
        loop {
            while let Ok(line) = self.lines.try_recv() {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Ok(rest.to_owned());
                }
            }
            self.check_running()?;
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not print `{prefix}…`:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// An error naming the child, with the end of its log, when it has
    /// exited.
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.inner.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}); its log ends:\n{}",
                self.name,
                self.log_tail()
            )),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }

    /// The last lines of the child's stderr.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, then SIGKILL after [`GRACE`]; waits for the exit.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if matches!(self.inner.try_wait(), Ok(Some(_))) {
            return;
        }
        // `kill` keeps this crate free of unsafe signal calls.
        let _ = Command::new("kill")
            .args(["-TERM", &self.inner.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if !matches!(self.inner.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop within {GRACE:?}; killing it", self.name);
        let _ = self.inner.kill();
        let _ = self.inner.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.stop();
    }
}
