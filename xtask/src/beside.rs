//! Work run beside the Python steps: the test command's lint and release build. The
//! Python steps leave some core time idle (export, optimize and golden are mostly
//! single-threaded; on a fresh machine about 5 % of two cores over their 48 minutes), and
//! the build needs nothing they make: `generated/` is checked in (`gen --check` fails the
//! run if it is stale). So the Rust work starts with the pipeline at the lowest CPU
//! priority, taking only the time the Python steps leave, its output kept in a log that
//! is quoted if it fails.

use std::ffi::OsStr;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A command run by `nice -n 19`: it takes a core only when nothing else wants it.
pub fn niced(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("nice");
    command.args(["-n", "19"]).arg(program);
    command
}

/// Commands run one after another in a thread of their own; the one running is killed
/// if the pipeline ends first (a failed step), so that no build outlives the run.
pub struct Beside {
    what: String,
    log: PathBuf,
    started: Instant,
    state: State,
    running: Arc<Mutex<Option<Child>>>,
}

enum State {
    Running(JoinHandle<Result<()>>),
    Done,
}

impl Beside {
    /// Starts `commands` (each with what it is, for its error) in order; their output goes
    /// to `log`. The first that fails ends the work.
    pub fn start(what: &str, log: PathBuf, commands: Vec<(&'static str, Command)>) -> Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        eprintln!(
            "==> {what}: beside the Python steps, at the lowest CPU priority (output in {})",
            log.display()
        );
        let running = Arc::new(Mutex::new(None::<Child>));
        let slot = Arc::clone(&running);
        let handle = std::thread::spawn(move || -> Result<()> {
            for (name, mut command) in commands {
                let child = command
                    .stdout(file.try_clone()?)
                    .stderr(file.try_clone()?)
                    .spawn()
                    .with_context(|| format!("cannot run {name}"))?;
                *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
                let status = loop {
                    let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
                    let Some(child) = guard.as_mut() else {
                        bail!("{name} was stopped");
                    };
                    if let Some(status) = child.try_wait().with_context(|| format!("cannot wait for {name}"))? {
                        *guard = None;
                        break status;
                    }
                    drop(guard);
                    std::thread::sleep(Duration::from_millis(200));
                };
                if !status.success() {
                    bail!("{name} failed ({status})");
                }
            }
            Ok(())
        });
        Ok(Self {
            what: what.to_string(),
            log,
            started: Instant::now(),
            state: State::Running(handle),
            running,
        })
    }

    /// Fails at once if the work has already failed, so that a lint error does not wait
    /// for the Python steps to end; does not wait for it otherwise.
    pub fn check(&mut self) -> Result<()> {
        match &self.state {
            State::Running(handle) if handle.is_finished() => self.join(),
            _ => Ok(()),
        }
    }

    /// Waits for the work to end: says how long it ran and how long the pipeline waited.
    pub fn finish(mut self) -> Result<()> {
        let waiting = Instant::now();
        self.join()?;
        eprintln!(
            "    {}: done in {:.1}s, {:.1}s of it waited for",
            self.what,
            self.started.elapsed().as_secs_f64(),
            waiting.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn join(&mut self) -> Result<()> {
        let State::Running(handle) = std::mem::replace(&mut self.state, State::Done) else {
            return Ok(());
        };
        let outcome = match handle.join() {
            Ok(outcome) => outcome,
            Err(_) => Err(anyhow::anyhow!("the thread running it panicked")),
        };
        outcome.with_context(|| {
            format!(
                "{} failed after {:.0}s; the end of {}:\n{}",
                self.what,
                self.started.elapsed().as_secs_f64(),
                self.log.display(),
                tail(&self.log, 60)
            )
        })
    }
}

impl Drop for Beside {
    fn drop(&mut self) {
        if let Some(mut child) = self.running.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The last `lines` lines of `path` (or why it cannot be read).
fn tail(path: &std::path::Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(cannot read it: {error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_failure_names_the_command_and_quotes_its_output() {
        let dir = ScratchDir::new("beside-fails");
        let log = dir.join("out.log");
        let beside = Beside::start(
            "work",
            log,
            vec![
                ("first", shell("echo fine")),
                ("second", shell("echo broken >&2; exit 3")),
            ],
        )
        .unwrap();
        let error = format!("{:#}", beside.finish().unwrap_err());
        assert!(
            error.contains("second failed") && error.contains("fine\nbroken"),
            "{error}"
        );
    }

    #[test]
    fn the_running_command_dies_with_the_pipeline() {
        let dir = ScratchDir::new("beside-dropped");
        let mark = dir.join("mark");
        let beside = Beside::start(
            "work",
            dir.join("out.log"),
            vec![("slow", shell(&format!("sleep 2; touch {}", mark.display())))],
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(beside);
        std::thread::sleep(Duration::from_secs(3));
        assert!(!mark.exists(), "the command was killed before it could finish");
    }
}
