//! One component of the control plane as a child process, its output kept in a log file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// A running component: its process and where its stdout and stderr go.
#[derive(Debug)]
pub struct Component {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Component {
    /// Starts `program` with `args`, appending its output to `logs/NAME.log` (a restart keeps
    /// the earlier run's lines above the new ones).
    pub fn start(name: &str, program: &Path, args: &[String], logs: &Path) -> anyhow::Result<Self> {
        Self::start_with_env(name, program, args, &[], logs)
    }

    /// [`start`](Self::start) with these environment variables set too.
    pub fn start_with_env(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, &Path)],
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let log = logs.join(format!("{name}.log"));
        let out = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start {name} ({})", program.display()))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        })
    }

    /// The component's name, as its log file is named.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// An error if the process has exited, with the end of its log.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        let Some(child) = self.child.as_mut() else {
            anyhow::bail!("{} was stopped", self.name);
        };
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}); the end of {}:\n{}",
                self.name,
                self.log.display(),
                self.tail(30)
            );
        }
        Ok(())
    }

    /// Sends `signal` (`TERM`, `STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("the process was stopped")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {} failed", child.id());
        Ok(())
    }

    /// Sends SIGTERM and waits up to `grace` for the process to exit, then kills it. Returns
    /// whether it exited on its own.
    pub fn stop(&mut self, grace: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        // std has no SIGTERM; kill(1) is on every Unix this runs on. A frozen process is
        // thawed first so it can exit.
        for signal in ["-CONT", "-TERM"] {
            let _ = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status();
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}
