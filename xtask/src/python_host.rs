//! The Python step host: one process (`python/modelcrate/host.py`) that imports torch,
//! transformers and optimum once, then runs each step in a child forked from it, so that
//! a pipeline of ~30 Python steps pays the 10–16 s of imports once instead of per step.
//!
//! Started on the first step that must run (a pipeline whose steps are all cached or up
//! to date never starts it) and stopped by `stop` or on drop. A step's stdout is shown as
//! progress; its stderr goes to `artifacts/<model>/logs/<step>.log`, whose end a failure
//! quotes. A host that dies is started again for the next step.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::progress::{self, Progress};
use crate::python::OFFLINE_ENV;

/// Starts every line the host writes on its stdout; a step's own output never does.
const CONTROL: char = '\u{1e}';

/// How many lines of a failed step's log its error quotes.
const QUOTED_LINES: usize = 25;

/// One step for the host: `python -m <module> <args>`, its stderr into `log`.
pub struct StepRequest<'a> {
    /// What the errors call it: "step `train` of model `news-topic`".
    pub what: String,
    pub module: String,
    pub args: Vec<String>,
    pub log: &'a Path,
}

pub struct StepHost {
    python: PathBuf,
    root: PathBuf,
    /// Folders put before `python/` on the host's `PYTHONPATH` (tests add theirs).
    extra_path: Vec<PathBuf>,
    /// `--preload` for the host; `None`: its own list, what the steps import.
    preload: Option<String>,
    /// Where the host's own stderr goes (its start-up, not the steps').
    host_log: PathBuf,
    running: Mutex<Option<Running>>,
}

struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// What the host said on its stdout: a step's progress line or a control message.
enum Line {
    Progress(String),
    Control(String),
    Ended,
}

impl StepHost {
    pub fn new(python: PathBuf, root: PathBuf, host_log: PathBuf) -> Self {
        Self {
            python,
            root,
            extra_path: Vec::new(),
            preload: None,
            host_log,
            running: Mutex::new(None),
        }
    }

    /// A host that imports only `preload` and also finds modules under `extra_path`.
    #[cfg(test)]
    fn for_tests(python: PathBuf, root: PathBuf, host_log: PathBuf, extra_path: PathBuf, preload: &str) -> Self {
        let mut host = Self::new(python, root, host_log);
        host.extra_path = vec![extra_path];
        host.preload = Some(preload.to_string());
        host
    }

    /// Runs one step and waits for it; its progress is shown as it comes.
    pub fn run(&self, request: &StepRequest) -> Result<()> {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut host = match running.take() {
            Some(host) => host,
            None => self.start()?,
        };
        if let Some(parent) = request.log.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        // A step that never starts must not be explained by an earlier run's log.
        let _ = std::fs::remove_file(request.log);
        let line = serde_json::json!({
            "module": request.module,
            "args": request.args,
            "log": request.log,
        });
        let sent = writeln!(host.stdin, "{line}").and_then(|()| host.stdin.flush());
        let outcome = match sent {
            Ok(()) => host.wait_done(),
            Err(error) => Err(error).context("the Python step host stopped taking steps"),
        };
        let code = match outcome {
            Ok(code) => {
                *running = Some(host);
                code
            }
            Err(error) => {
                // Whatever the host's state, the next step gets a new one.
                host.kill();
                bail!("{} did not finish: {error:#}\n{}", request.what, quote_end(request.log));
            }
        };
        if code != 0 {
            let how = if code < 0 {
                format!("killed by signal {}", -code)
            } else {
                format!("exit code {code}")
            };
            bail!(
                "{} failed ({how}); Python said:\n{}",
                request.what,
                quote_end(request.log)
            );
        }
        Ok(())
    }

    /// Ends the host (its imports hold memory); the next `run` starts a new one.
    pub fn stop(&self) {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(host) = running.take() {
            host.end();
        }
    }

    fn start(&self) -> Result<Running> {
        let started = Instant::now();
        if let Some(parent) = self.host_log.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let log = File::create(&self.host_log).with_context(|| format!("cannot create {}", self.host_log.display()))?;
        let mut python_path = self.extra_path.clone();
        python_path.push(self.root.join("python"));
        let mut command = Command::new(&self.python);
        command.args(["-u", "-m", "modelcrate.host"]);
        if let Some(preload) = &self.preload {
            command.args(["--preload", preload]);
        }
        let mut child = command
            .current_dir(&self.root)
            .env("PYTHONPATH", std::env::join_paths(&python_path)?)
            .envs(OFFLINE_ENV)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot start the Python step host with {}", self.python.display()))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("the Python step host has no pipes");
        };
        let mut host = Running {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        loop {
            match host.next_line()? {
                Line::Control(message) if message == "ready" => break,
                Line::Progress(line) => eprintln!("    {line}"),
                Line::Control(message) => bail!("the Python step host said `{message}` before it was ready"),
                Line::Ended => {
                    let _ = host.child.wait();
                    bail!(
                        "the Python step host ended before it was ready\n{}",
                        quote_end(&self.host_log)
                    );
                }
            }
        }
        eprintln!(
            "    python step host ready in {:.1}s (torch, transformers, optimum imported once for every step)",
            started.elapsed().as_secs_f64()
        );
        Ok(host)
    }
}

impl Drop for StepHost {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Running {
    fn next_line(&mut self) -> Result<Line> {
        let mut bytes = Vec::new();
        if self.stdout.read_until(b'\n', &mut bytes)? == 0 {
            return Ok(Line::Ended);
        }
        let line = String::from_utf8_lossy(&bytes)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        Ok(match line.strip_prefix(CONTROL) {
            Some(message) => Line::Control(message.to_string()),
            None => Line::Progress(line),
        })
    }

    /// Shows the step's progress until the host says it is done; its exit code. A
    /// training's lines (`epoch e/E step s/S loss …`) drive a bar of its optimizer steps.
    fn wait_done(&mut self) -> Result<i32> {
        let mut training: Option<Progress> = None;
        loop {
            match self.next_line()? {
                Line::Progress(line) => match progress::optimizer_step(&line) {
                    Some((step, steps)) => training
                        .get_or_insert_with(|| Progress::new(steps, "optimizer steps"))
                        .set(step, steps, &line),
                    None => match &training {
                        Some(bar) => bar.println(&format!("    {line}")),
                        None => eprintln!("    {line}"),
                    },
                },
                Line::Control(message) => {
                    let code = message
                        .strip_prefix("done ")
                        .and_then(|code| code.parse().ok())
                        .with_context(|| format!("the Python step host said `{message}`, not `done <code>`"))?;
                    return Ok(code);
                }
                Line::Ended => {
                    let status = self.child.wait()?;
                    bail!("the Python step host ended ({status})");
                }
            }
        }
    }

    /// Closes stdin, which ends the host once its step is done.
    fn end(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }

    /// Ends a host whose state is unknown (it stopped answering, or died).
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a log, indented as a quote, and where the whole log is.
fn quote_end(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let quoted: Vec<String> = lines[lines.len().saturating_sub(QUOTED_LINES)..]
        .iter()
        .map(|line| format!("    | {line}"))
        .collect();
    format!("{}\n    (all of it: {})", quoted.join("\n"), log.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::Venv;
    use crate::scratch::ScratchDir;

    /// Steps for the tests: each does what its name says and writes what it saw to
    /// `--out`.
    const STEPS: &str = r#"
import json, os, signal, sys

def out(value):
    with open(sys.argv[sys.argv.index("--out") + 1], "w") as f:
        json.dump(value, f)

def main():
    what = sys.argv[1]
    if what == "echo":
        print("progress line")
        out({"argv": sys.argv[1:], "cwd": os.getcwd(), "offline": os.environ.get("HF_HUB_OFFLINE")})
    elif what == "leave-state":
        json.left_behind = True
        os.environ["MODELCRATE_LEFT_BEHIND"] = "1"
        out({})
    elif what == "see-state":
        out({"module": hasattr(json, "left_behind"), "env": "MODELCRATE_LEFT_BEHIND" in os.environ})
    elif what == "fail":
        print("the cause, on stderr", file=sys.stderr)
        sys.exit(3)
    elif what == "refuse":
        raise SystemExit("models/x.toml: field y is wrong")
    elif what == "raise":
        raise ValueError("a bug in the step")
    elif what == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    elif what == "kill-host":
        os.kill(os.getppid(), signal.SIGKILL)
        signal.pause()
    elif what == "torch-threads":
        import torch
        out({"threads": torch.get_num_threads()})

if __name__ == "__main__":
    main()
"#;

    struct Fixture {
        dir: ScratchDir,
        host: StepHost,
    }

    impl Fixture {
        fn new(name: &str, preload: &str) -> Self {
            let dir = ScratchDir::new(&format!("host-{name}"));
            std::fs::write(dir.join("steps_under_test.py"), STEPS).unwrap();
            let venv = Venv {
                dir: Venv::location().unwrap(),
            };
            assert!(
                venv.python().is_file(),
                "no venv at {}: run `cargo xtask setup` first",
                venv.dir.display()
            );
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let host = StepHost::for_tests(
                venv.python(),
                root,
                dir.join("host.log"),
                dir.path().to_path_buf(),
                preload,
            );
            Self { dir, host }
        }

        /// Runs `steps_under_test <what>`; what the step wrote to `--out`, if anything.
        fn run(&self, what: &str) -> Result<serde_json::Value> {
            let out = self.dir.join(format!("{what}.json"));
            let _ = std::fs::remove_file(&out);
            self.host.run(&StepRequest {
                what: format!("step `{what}`"),
                module: "steps_under_test".into(),
                args: vec![what.into(), "--out".into(), out.display().to_string()],
                log: &self.dir.join(format!("logs/{what}.log")),
            })?;
            let text = std::fs::read_to_string(&out).unwrap_or_else(|_| "null".into());
            Ok(serde_json::from_str(&text).unwrap())
        }
    }

    #[test]
    fn a_step_runs_as_python_m_would_in_the_repository_offline() {
        let fixture = Fixture::new("echo", "json");
        let seen = fixture.run("echo").unwrap();
        assert_eq!(
            seen["argv"],
            serde_json::json!(["echo", "--out", fixture.dir.join("echo.json").display().to_string()])
        );
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .canonicalize()
            .unwrap();
        assert_eq!(PathBuf::from(seen["cwd"].as_str().unwrap()), root);
        assert_eq!(seen["offline"], "1");
    }

    #[test]
    fn what_a_step_leaves_behind_never_reaches_the_next() {
        let fixture = Fixture::new("state", "json");
        fixture.run("leave-state").unwrap();
        let seen = fixture.run("see-state").unwrap();
        assert_eq!(seen, serde_json::json!({"module": false, "env": false}));
    }

    #[test]
    fn a_failed_step_names_itself_its_exit_code_and_quotes_its_stderr() {
        let fixture = Fixture::new("fail", "");
        let error = format!("{:#}", fixture.run("fail").unwrap_err());
        assert!(error.contains("step `fail` failed (exit code 3)"), "{error}");
        assert!(error.contains("| the cause, on stderr"), "{error}");
        assert!(error.contains("logs/fail.log"), "{error}");

        let error = format!("{:#}", fixture.run("refuse").unwrap_err());
        assert!(
            error.contains("(exit code 1)") && error.contains("| models/x.toml: field y is wrong"),
            "{error}"
        );

        let error = format!("{:#}", fixture.run("raise").unwrap_err());
        assert!(
            error.contains("(exit code 1)") && error.contains("| ValueError: a bug in the step"),
            "{error}"
        );
    }

    #[test]
    fn a_crashed_step_fails_by_its_signal_and_the_host_runs_the_next() {
        let fixture = Fixture::new("crash", "");
        let error = format!("{:#}", fixture.run("crash").unwrap_err());
        assert!(error.contains("step `crash` failed (killed by signal 9)"), "{error}");
        assert!(fixture.run("echo").is_ok());
    }

    #[test]
    fn a_host_that_dies_fails_its_step_and_a_new_one_runs_the_next() {
        let fixture = Fixture::new("dead-host", "");
        let error = format!("{:#}", fixture.run("kill-host").unwrap_err());
        assert!(error.contains("step `kill-host` did not finish"), "{error}");
        assert_eq!(fixture.run("echo").unwrap()["offline"], "1");
    }

    #[test]
    fn a_host_that_cannot_import_says_why_before_any_step() {
        let fixture = Fixture::new("no-import", "json,no_such_module_here");
        let error = format!("{:#}", fixture.run("echo").unwrap_err());
        assert!(error.contains("ended before it was ready"), "{error}");
        assert!(error.contains("No module named 'no_such_module_here'"), "{error}");
    }

    /// torch imported in the host must not leave a forked step on fewer threads than a
    /// process of its own gets (the steps' results are only reproducible on one count).
    #[test]
    fn a_step_forked_after_torch_is_imported_gets_the_threads_of_a_fresh_process() {
        let fixture = Fixture::new("torch", "torch");
        let forked = fixture.run("torch-threads").unwrap()["threads"].clone();
        let fresh = Command::new(&fixture.host.python)
            .args(["-c", "import torch; print(torch.get_num_threads())"])
            .output()
            .unwrap();
        let fresh: serde_json::Value = String::from_utf8_lossy(&fresh.stdout)
            .trim()
            .parse::<u64>()
            .unwrap()
            .into();
        assert_eq!(forked, fresh);
    }
}
