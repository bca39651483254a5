//! `cargo xtask chaos`: the server under faults and load, as a table of case, expected,
//! observed and held, on the real release binary and the pipeline's artifacts.
//!
//! Faults run on one model ([`MODEL`]) copied into a scratch folder (`artifacts/chaos/`:
//! its serving variant and the files it loads, with `checksums.json`; its test split and
//! golden outputs for a reload's canary), so that damaging its files harms nothing else:
//! a file cut short, corrupted or missing at start and at a reload; a new file cut short
//! by a full disk (a small tmpfs; skipped, and said, where mounting one is not allowed);
//! SIGKILL during a request and during a reload, then a restart. Load runs on the same
//! model: the closed-loop capacity first, then an open loop at twice it (accepted
//! requests answered within the timeout, the rest refused with 429 at once, memory
//! bounded, full service back within 5 s after), and slow clients that send their heads
//! a byte at a time or never finish them beside normal ones (the defaults, then
//! `--max-connections` and `--header-read-timeout-ms` tighter). The soak runs a server of
//! every model at 70 % of its capacity with a request of every task in turn: no error,
//! memory and open files flat after warm-up.
//!
//! The test command runs the short version (load for 20 s, soak for 60 s); `--long` runs
//! the overload for 60 s and the soak for 20 minutes. Any case that does not hold fails
//! the command, after the whole table is printed.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use modelcrate_schema::Serving;

use crate::paths::Paths;
use crate::pipeline::release_binary;
use crate::smoke::{Server, free_port, request_with, samples_of_every_task};
use crate::{bundle, checksums, process};

/// The model the faults and the load run on: small, so that a case takes seconds.
const MODEL: &str = "release-topics";
const BODY: &str = r#"{"inputs": "The 2.4 release fixes the parser and upgrades the TLS dependency."}"#;
const TOKEN: &str = "chaos-admin-token";
const AUTHORIZATION: &str = "Authorization: Bearer chaos-admin-token";
/// The server's own default, which the overload's accepted requests must answer within.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the load runs.
#[derive(Debug, Clone, Copy)]
pub struct Length {
    pub overload: Duration,
    pub soak: Duration,
}

impl Length {
    pub const SHORT: Self = Self {
        overload: Duration::from_secs(20),
        soak: Duration::from_secs(60),
    };
    pub const LONG: Self = Self {
        overload: Duration::from_secs(60),
        soak: Duration::from_secs(20 * 60),
    };
}

/// One row of the table.
struct Case {
    name: String,
    expected: String,
    observed: String,
    /// `None`: the case could not run here (the reason is in `observed`).
    held: Option<bool>,
}

/// Runs every case and prints the table; an error if any case did not hold.
pub fn run(paths: &Paths, ort_dylib: &Path, length: Length) -> Result<()> {
    let scratch = Scratch::make(paths)?;
    let chaos = Chaos {
        binary: release_binary(paths, "modelcrate-server"),
        ort_dylib: ort_dylib.to_path_buf(),
        scratch,
    };
    let mut cases = Vec::new();
    cases.extend(chaos.at_start()?);
    cases.extend(chaos.at_reload()?);
    cases.push(chaos.full_disk()?);
    cases.extend(chaos.killed()?);
    cases.push(chaos.overload(length.overload)?);
    cases.extend(chaos.slow_clients()?);
    cases.push(soak(paths, &chaos, length.soak)?);
    print(&cases);
    let failed: Vec<&str> = cases
        .iter()
        .filter(|case| case.held == Some(false))
        .map(|case| case.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("{} chaos case(s) did not hold: {}", failed.len(), failed.join("; "));
    }
    Ok(())
}

fn print(cases: &[Case]) {
    eprintln!("    | case | expected | observed | held |");
    eprintln!("    |---|---|---|---|");
    for case in cases {
        let held = match case.held {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not run",
        };
        eprintln!("    | {} | {} | {} | {held} |", case.name, case.expected, case.observed);
    }
}

/// The scratch copy of [`MODEL`]: pristine files kept aside, restored before each case.
struct Scratch {
    /// `<dir>/models`, the server's `--artifacts`.
    artifacts: PathBuf,
    golden: PathBuf,
    pristine: PathBuf,
    /// The serving variant's file name.
    serving: String,
}

impl Scratch {
    fn make(paths: &Paths) -> Result<Self> {
        let dir = paths.artifacts().join("chaos");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        let onnx = paths.onnx(MODEL);
        let pristine = dir.join("pristine");
        std::fs::create_dir_all(&pristine)?;
        bundle::copy_kept(&onnx, &pristine)?;
        if !pristine.join(checksums::FILE).is_file() {
            bail!(
                "{} has no {}: run `cargo xtask select`",
                onnx.display(),
                checksums::FILE
            );
        }
        let serving: Serving = serde_json::from_str(&std::fs::read_to_string(
            pristine.join(modelcrate_schema::SERVING_FILE),
        )?)?;
        let artifacts = dir.join("models");
        let data = artifacts.join(MODEL).join("data");
        std::fs::create_dir_all(&data)?;
        copy_folder(&paths.artifact(MODEL).join("data"), &data)?;
        let golden = dir.join("golden").join(MODEL);
        std::fs::create_dir_all(&golden)?;
        std::fs::copy(
            paths.golden(MODEL).join("reference.json"),
            golden.join("reference.json"),
        )?;
        let scratch = Self {
            artifacts,
            golden: dir.join("golden"),
            pristine,
            serving: serving.file,
        };
        scratch.restore()?;
        Ok(scratch)
    }

    fn onnx(&self) -> PathBuf {
        self.artifacts.join(MODEL).join("onnx")
    }

    /// The model's folder as `select` left it.
    fn restore(&self) -> Result<()> {
        let onnx = self.onnx();
        if onnx.exists() {
            std::fs::remove_dir_all(&onnx)?;
        }
        std::fs::create_dir_all(&onnx)?;
        copy_folder(&self.pristine, &onnx)
    }
}

fn copy_folder(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot list {}", from.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// A damage done to a file of the model's folder.
#[derive(Clone, Copy)]
enum Damage {
    /// Cut to its first half.
    Truncated,
    /// 4 KiB in its middle flipped: a loader reads it without complaint.
    Corrupted,
    Missing,
}

impl Damage {
    const ALL: [Self; 3] = [Self::Truncated, Self::Corrupted, Self::Missing];

    fn name(self) -> &'static str {
        match self {
            Self::Truncated => "cut short",
            Self::Corrupted => "corrupted",
            Self::Missing => "missing",
        }
    }

    fn apply(self, path: &Path) -> Result<()> {
        match self {
            Self::Truncated => {
                let length = std::fs::metadata(path)?.len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)?
                    .set_len(length / 2)?;
            }
            Self::Corrupted => {
                let mut bytes = std::fs::read(path)?;
                let middle = bytes.len() / 2;
                let end = bytes.len().min(middle + 4096);
                bytes[middle..end].iter_mut().for_each(|byte| *byte ^= 0x5a);
                std::fs::write(path, bytes)?;
            }
            Self::Missing => std::fs::remove_file(path)?,
        }
        Ok(())
    }
}

struct Chaos {
    binary: PathBuf,
    ort_dylib: PathBuf,
    scratch: Scratch,
}

fn post(port: u16, path: &str, headers: &[&str], body: &str) -> Result<(u16, String)> {
    request_with("127.0.0.1", port, "POST", path, headers, body, Duration::from_secs(60))
}

fn predict(port: u16) -> Result<(u16, String)> {
    post(port, &format!("/models/{MODEL}/predict"), &[], BODY)
}

impl Chaos {
    /// The server on the model in `artifacts`, with `extra` flags.
    fn command(&self, port: u16, artifacts: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--model", MODEL])
            .arg("--artifacts")
            .arg(artifacts)
            .arg("--golden")
            .arg(&self.scratch.golden)
            .args(["--watch-interval-ms", "0", "--admin-token", TOKEN])
            .args(extra)
            .env("ORT_DYLIB_PATH", &self.ort_dylib)
            .stdout(Stdio::null());
        command
    }

    /// The server on the scratch model, ready.
    fn start(&self, extra: &[&str]) -> Result<(Server, u16)> {
        let port = free_port()?;
        let child = self
            .command(port, &self.scratch.artifacts, extra)
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = Server::new(child);
        server.wait_ready("127.0.0.1", port, "/health/ready", Duration::from_secs(120))?;
        Ok((server, port))
    }

    /// Starts the server on a damaged folder: it must exit, naming `file`.
    fn refused_at_start(&self, file: &str) -> Result<(bool, String)> {
        let port = free_port()?;
        let mut child = self
            .command(port, &self.scratch.artifacts, &[])
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait()? {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
                }
                let line = stderr.lines().rev().find(|line| line.contains(file)).unwrap_or("");
                let named = !status.success() && !line.is_empty();
                let observed = if named {
                    format!("exit {}: `{}`", status.code().unwrap_or(-1), shorten(line))
                } else {
                    format!("exit {}, `{file}` not named", status.code().unwrap_or(-1))
                };
                return Ok((named, observed));
            }
            if matches!(predict(port), Ok((200, _))) {
                let _ = child.kill();
                let _ = child.wait();
                return Ok((false, "started and answered from the damaged file".into()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Ok((false, "neither exited nor answered within 120 s".into()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn at_start(&self) -> Result<Vec<Case>> {
        let mut cases = Vec::new();
        for (file, damages) in [
            (self.scratch.serving.as_str(), &Damage::ALL[..]),
            ("tokenizer.json", &[Damage::Corrupted, Damage::Missing][..]),
        ] {
            for &damage in damages {
                self.scratch.restore()?;
                damage.apply(&self.scratch.onnx().join(file))?;
                let (held, observed) = self.refused_at_start(file)?;
                cases.push(Case {
                    name: format!("start: {file} {}", damage.name()),
                    expected: "refused, the file named".into(),
                    observed,
                    held: Some(held),
                });
            }
        }
        self.scratch.restore()?;
        Ok(cases)
    }

    /// Reloads the running server on `port` and says whether it was refused naming
    /// `file` while the serving model went on answering `before`.
    fn refused_reload(&self, port: u16, file: &str, before: &str) -> Result<(bool, String)> {
        let (status, answer) = post(port, &format!("/admin/models/{MODEL}/reload"), &[AUTHORIZATION], "")?;
        let (after_status, after) = predict(port)?;
        let named = answer.contains(file);
        let same = after_status == 200 && after == before;
        let held = (400..600).contains(&status) && named && same;
        Ok((
            held,
            format!(
                "reload {status}{}; then predict {after_status}, {}",
                if named {
                    ", the file named"
                } else {
                    ", the file not named"
                },
                if same { "the same answer" } else { "a different answer" }
            ),
        ))
    }

    fn at_reload(&self) -> Result<Vec<Case>> {
        let mut cases = Vec::new();
        for damage in Damage::ALL {
            self.scratch.restore()?;
            let (server, port) = self.start(&[])?;
            let (_, before) = predict(port)?;
            damage.apply(&self.scratch.onnx().join(&self.scratch.serving))?;
            let (held, observed) = self.refused_reload(port, &self.scratch.serving, &before)?;
            cases.push(Case {
                name: format!("reload: {} {}", self.scratch.serving, damage.name()),
                expected: "refused, the file named; the old model serves on".into(),
                observed,
                held: Some(held),
            });
            drop(server);
        }
        self.scratch.restore()?;
        Ok(cases)
    }

    /// A new, larger serving file written onto a full disk: cut short where the space
    /// ended, as a pipeline's write on a full disk leaves it.
    fn full_disk(&self) -> Result<Case> {
        let name = "reload: a new file written on a full disk".to_string();
        let expected = "refused, the file named; nothing half-written loaded; the old model serves on".to_string();
        let mount = self.scratch.artifacts.join("small-disk");
        std::fs::create_dir_all(&mount)?;
        let size: u64 = std::fs::read_dir(&self.scratch.pristine)?
            .filter_map(|entry| entry.ok()?.metadata().ok())
            .map(|metadata| metadata.len())
            .sum::<u64>()
            + (4 << 20);
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            return Ok(Case {
                name,
                expected,
                observed: "a tmpfs cannot be mounted here (needs root or CAP_SYS_ADMIN)".into(),
                held: None,
            });
        }
        let result = (|| -> Result<(bool, String)> {
            let onnx = mount.join(MODEL).join("onnx");
            std::fs::create_dir_all(&onnx)?;
            copy_folder(&self.scratch.pristine, &onnx)?;
            std::os::unix::fs::symlink(
                self.scratch.artifacts.join(MODEL).join("data"),
                mount.join(MODEL).join("data"),
            )?;
            let port = free_port()?;
            let child = self.command(port, &mount, &[]).stderr(Stdio::null()).spawn()?;
            let mut server = Server::new(child);
            server.wait_ready("127.0.0.1", port, "/health/ready", Duration::from_secs(120))?;
            let (_, before) = predict(port)?;
            let target = onnx.join(&self.scratch.serving);
            let full = write_until_full(&target, size * 2)?;
            let (held, observed) = self.refused_reload(port, &self.scratch.serving, &before)?;
            drop(server);
            Ok((
                full && held,
                format!(
                    "write: {}; {observed}",
                    if full {
                        "no space left, the file cut short"
                    } else {
                        "did not fill the disk"
                    }
                ),
            ))
        })();
        let _ = Command::new("umount").arg(&mount).status();
        let (held, observed) = result?;
        Ok(Case {
            name,
            expected,
            observed,
            held: Some(held),
        })
    }

    /// SIGKILL during a request and during a reload; the restarted server serves.
    fn killed(&self) -> Result<Vec<Case>> {
        let mut cases = Vec::new();
        self.scratch.restore()?;
        let batch = format!(
            "{{\"inputs\": [{}]}}",
            vec![r#""the release fixes the parser and the TLS dependency""#; 64].join(", ")
        );
        for (during, path, body, wait) in [
            (
                "a request",
                format!("/models/{MODEL}/predict"),
                batch.as_str(),
                Duration::from_millis(30),
            ),
            (
                "a reload",
                format!("/admin/models/{MODEL}/reload"),
                "",
                Duration::from_millis(300),
            ),
        ] {
            let (server, port) = self.start(&[])?;
            let (_, before) = predict(port)?;
            let pid = server.id();
            let sender = std::thread::spawn({
                let body = body.to_string();
                move || post(port, &path, &[AUTHORIZATION], &body)
            });
            std::thread::sleep(wait);
            let killed = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()?
                .success();
            let lost = sender.join().map(|answer| answer.is_err()).unwrap_or(true);
            drop(server);
            let restarted = Instant::now();
            let (server, port) = self.start(&[])?;
            let ready = restarted.elapsed();
            let (status, after) = predict(port)?;
            drop(server);
            let held = killed && status == 200 && after == before;
            cases.push(Case {
                name: format!("SIGKILL during {during}, restart"),
                expected: "serves again, the same answers".into(),
                observed: format!(
                    "{}; ready {:.1} s after restart, predict {status}{}",
                    if lost {
                        "the request in flight lost"
                    } else {
                        "answered before the kill"
                    },
                    ready.as_secs_f64(),
                    if after == before {
                        ", the same answer"
                    } else {
                        ", a different answer"
                    }
                ),
                held: Some(held),
            });
        }
        Ok(cases)
    }

    /// The closed-loop capacity, then an open loop at twice it.
    fn overload(&self, duration: Duration) -> Result<Case> {
        self.scratch.restore()?;
        let (server, port) = self.start(&[])?;
        // As many clients as the engine batches at most, so that batching is at its best
        // and the figure is the server's ceiling, not four clients' turn-taking.
        let capacity = closed_loop(port, 64, Duration::from_secs(5))?;
        let pid = server.id();
        let rss_before = process::rss(pid).unwrap_or(0);
        let peak = Arc::new(AtomicUsize::new(rss_before as usize));
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
            std::thread::spawn(move || {
                while sampling.load(Ordering::Relaxed) {
                    peak.fetch_max(process::rss(pid).unwrap_or(0) as usize, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        let sending = Instant::now();
        let answers = open_loop(
            port,
            &[(format!("/models/{MODEL}/predict"), BODY.to_string())],
            2.0 * capacity,
            duration,
        );
        let sent_rate = answers.len() as f64 / sending.elapsed().as_secs_f64();
        sampling.store(false, Ordering::Relaxed);
        let _ = sampler.join();
        let ended = Instant::now();
        let back = loop {
            if matches!(predict(port), Ok((200, _))) {
                break Some(ended.elapsed());
            }
            if ended.elapsed() > Duration::from_secs(30) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(server);
        let tally = Tally::of(&answers);
        let peak = peak.load(Ordering::Relaxed) as f64;
        let bounded = peak <= rss_before as f64 * 1.5 + 256.0 * 1024.0 * 1024.0;
        // The load must have been sent at well over the capacity, or nothing was tested.
        let held = sent_rate >= 1.5 * capacity
            && tally.other == 0
            && tally.ok > 0
            && tally.refused > 0
            && tally.p99_ok <= REQUEST_TIMEOUT.as_secs_f64()
            && tally.p99_refused < 0.5
            && bounded
            && back.is_some_and(|back| back <= Duration::from_secs(5));
        Ok(Case {
            name: format!(
                "overload: {:.0} req/s for {} s (2× the capacity)",
                2.0 * capacity,
                duration.as_secs()
            ),
            expected:
                "accepted within the 30 s timeout, the rest 429 at once, memory bounded, service back ≤ 5 s after"
                    .into(),
            observed: format!(
                "capacity {capacity:.0} req/s (64 clients); {} sent ({sent_rate:.0}/s): {} answered (p99 {:.2} s), {} refused 429 (p99 {:.3} s), {} other; RSS {:.0} → peak {:.0} MB; answered {} after",
                answers.len(),
                tally.ok,
                tally.p99_ok,
                tally.refused,
                tally.p99_refused,
                tally.other,
                rss_before as f64 / 1e6,
                peak / 1e6,
                back.map_or("not within 30 s".to_string(), |back| format!(
                    "{:.2} s",
                    back.as_secs_f64()
                ))
            ),
            held: Some(held),
        })
    }

    /// Clients that send their heads a byte at a time, or never finish them, beside
    /// normal ones: with the defaults, and with tighter limits.
    fn slow_clients(&self) -> Result<Vec<Case>> {
        let mut cases = Vec::new();
        // With room for every slow client, a normal one is answered at once. With fewer
        // places than slow clients, it waits in the kernel's backlog behind them while
        // each round of them is cut off at the header timeout: at most
        // ⌈slow / places⌉ timeouts, and a second more.
        let (slow_tight, places, timeout) = (200u32, 64u32, Duration::from_secs(2));
        let (places_flag, timeout_flag) = (places.to_string(), timeout.as_millis().to_string());
        for (flags, slow, bound) in [
            (vec![], 400, Duration::from_secs(2)),
            (
                vec![
                    "--max-connections",
                    &places_flag,
                    "--header-read-timeout-ms",
                    &timeout_flag,
                ],
                slow_tight,
                timeout * slow_tight.div_ceil(places) + Duration::from_secs(1),
            ),
        ] {
            self.scratch.restore()?;
            let (server, port) = self.start(&flags)?;
            let running = Arc::new(AtomicBool::new(true));
            let mut holders = Vec::new();
            for index in 0..slow {
                let running = Arc::clone(&running);
                holders.push(std::thread::spawn(move || {
                    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
                        return;
                    };
                    let head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ";
                    if index % 2 == 0 {
                        // Half never finish their head.
                        let _ = stream.write_all(head);
                        while running.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    } else {
                        for byte in head.iter().cycle() {
                            if !running.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }));
            }
            std::thread::sleep(Duration::from_secs(1));
            let mut slowest = Duration::ZERO;
            let mut answered = 0;
            for _ in 0..20 {
                let started = Instant::now();
                if matches!(predict(port), Ok((200, _))) {
                    answered += 1;
                }
                slowest = slowest.max(started.elapsed());
            }
            running.store(false, Ordering::Relaxed);
            holders.into_iter().for_each(|holder| drop(holder.join()));
            drop(server);
            let limits = if flags.is_empty() {
                "the defaults".to_string()
            } else {
                flags.join(" ")
            };
            cases.push(Case {
                name: format!("{slow} slow clients, {limits}"),
                expected: format!("20 normal requests each answered, within {} s", bound.as_secs()),
                observed: format!("{answered}/20 answered, the slowest in {:.2} s", slowest.as_secs_f64()),
                held: Some(answered == 20 && slowest <= bound),
            });
        }
        Ok(cases)
    }
}

/// Writes `bytes` bytes over `path` as a new export would, a MiB at a time; whether the
/// disk filled first (ENOSPC), leaving the file cut short.
fn write_until_full(path: &Path, bytes: u64) -> Result<bool> {
    let mut file = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let chunk = vec![7u8; 1 << 20];
    let mut written = 0;
    while written < bytes {
        match file.write_all(&chunk) {
            Ok(()) => written += chunk.len() as u64,
            Err(error) if error.raw_os_error() == Some(28) => return Ok(true), // ENOSPC
            Err(error) => return Err(error).with_context(|| format!("cannot write {}", path.display())),
        }
    }
    Ok(false)
}

/// Requests answered per second by `clients` clients asking one after another.
fn closed_loop(port: u16, clients: usize, duration: Duration) -> Result<f64> {
    let answered = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let answered = Arc::clone(&answered);
            std::thread::spawn(move || {
                while started.elapsed() < duration {
                    if matches!(predict(port), Ok((200, _))) {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|worker| drop(worker.join()));
    let rate = answered.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    if rate <= 0.0 {
        bail!("no request was answered while measuring the capacity");
    }
    Ok(rate)
}

/// An answer of the open loop: its status (0 when the connection failed) and seconds.
type Answer = (u16, f64);

/// Sends `requests` in turn at `rate` a second for `duration`, each at its time whatever
/// the answers before it (an open loop: a slow server gets the same arrivals).
fn open_loop(port: u16, requests: &[(String, String)], rate: f64, duration: Duration) -> Vec<Answer> {
    let count = (rate * duration.as_secs_f64()) as usize;
    let next = Arc::new(AtomicUsize::new(0));
    let answers = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let requests = Arc::new(requests.to_vec());
    let started = Instant::now();
    // Enough senders that the schedule goes on while answers take up to two seconds
    // (an overloaded queue's wait): each sender waits for its own answer.
    let senders = ((rate * 2.0) as usize + 64).clamp(1, 2048).min(count.max(1));
    let workers: Vec<_> = (0..senders)
        .filter_map(|_| {
            let (next, answers, requests) = (Arc::clone(&next), Arc::clone(&answers), Arc::clone(&requests));
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= count {
                            break;
                        }
                        let due = started + Duration::from_secs_f64(index as f64 / rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        let (path, body) = &requests[index % requests.len()];
                        let sent = Instant::now();
                        let status = post(port, path, &[], body).map_or(0, |(status, _)| status);
                        if let Ok(mut answers) = answers.lock() {
                            answers.push((status, sent.elapsed().as_secs_f64()));
                        }
                    }
                })
                .ok()
        })
        .collect();
    workers.into_iter().for_each(|worker| drop(worker.join()));
    Arc::try_unwrap(answers)
        .ok()
        .and_then(|answers| answers.into_inner().ok())
        .unwrap_or_default()
}

/// Answers counted by kind, with the 99th percentile of each kind's seconds.
struct Tally {
    ok: usize,
    refused: usize,
    other: usize,
    p99_ok: f64,
    p99_refused: f64,
    statuses: BTreeMap<u16, usize>,
}

impl Tally {
    fn of(answers: &[Answer]) -> Self {
        let p99 = |status: u16| {
            let mut seconds: Vec<f64> = answers.iter().filter(|a| a.0 == status).map(|a| a.1).collect();
            seconds.sort_by(f64::total_cmp);
            let rank = ((0.99 * seconds.len() as f64).ceil() as usize).clamp(1, seconds.len().max(1));
            seconds.get(rank - 1).copied().unwrap_or(0.0)
        };
        let mut statuses = BTreeMap::new();
        for (status, _) in answers {
            *statuses.entry(*status).or_insert(0) += 1;
        }
        let count = |status: u16| statuses.get(&status).copied().unwrap_or(0);
        Self {
            ok: count(200),
            refused: count(429),
            other: answers.len() - count(200) - count(429),
            p99_ok: p99(200),
            p99_refused: p99(429),
            statuses,
        }
    }
}

/// Every model served, a request of every task in turn at 70 % of the capacity that mix
/// was measured at: no error; memory and open files flat after the first fifth.
fn soak(paths: &Paths, chaos: &Chaos, duration: Duration) -> Result<Case> {
    let port = free_port()?;
    let child = Command::new(&chaos.binary)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--watch-interval-ms",
            "0",
        ])
        .arg("--artifacts")
        .arg(paths.artifacts())
        .env("ORT_DYLIB_PATH", &chaos.ort_dylib)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut server = Server::new(child);
    server.wait_ready("127.0.0.1", port, "/health/ready", Duration::from_secs(300))?;
    let requests: Vec<(String, String)> = samples_of_every_task(paths)?
        .into_iter()
        .map(|(_, path, body, _)| (path.to_string(), body))
        .collect();
    // The mix's capacity: four clients through the whole list, twice.
    let started = Instant::now();
    let rounds: Vec<_> = (0..4)
        .map(|_| {
            let requests = requests.clone();
            std::thread::spawn(move || {
                for (path, body) in requests.iter().chain(requests.iter()) {
                    let _ = post(port, path, &[], body);
                }
            })
        })
        .collect();
    rounds.into_iter().for_each(|round| drop(round.join()));
    let capacity = (8 * requests.len()) as f64 / started.elapsed().as_secs_f64();
    let pid = server.id();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (samples, sampling) = (Arc::clone(&samples), Arc::clone(&sampling));
        let every = duration / 20;
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                if let (Some(rss), Some(files)) = (process::rss(pid), process::open_files(pid))
                    && let Ok(mut samples) = samples.lock()
                {
                    samples.push((rss, files));
                }
                std::thread::sleep(every);
            }
        })
    };
    let answers = open_loop(port, &requests, 0.7 * capacity, duration);
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.join();
    drop(server);
    let samples = samples.lock().map(|samples| samples.clone()).unwrap_or_default();
    let tally = Tally::of(&answers);
    let warm = samples.len() / 5;
    let after_warm = &samples[warm.min(samples.len())..];
    let (first_rss, last_rss) = (
        after_warm.first().map_or(0, |s| s.0) as f64,
        after_warm.last().map_or(0, |s| s.0) as f64,
    );
    let growth = if first_rss > 0.0 {
        (last_rss - first_rss) / first_rss
    } else {
        f64::NAN
    };
    let files: Vec<usize> = after_warm.iter().map(|s| s.1).collect();
    let (fewest, most) = (
        files.iter().copied().min().unwrap_or(0),
        files.iter().copied().max().unwrap_or(0),
    );
    let errors = answers.len() - tally.ok;
    let held = errors == 0 && growth < 0.05 && most.saturating_sub(fewest) <= 8 && !answers.is_empty();
    Ok(Case {
        name: format!(
            "soak: every task, {:.0} req/s (70 %) for {} s",
            0.7 * capacity,
            duration.as_secs()
        ),
        expected: "no error; RSS growth < 5 % after warm-up; open files flat".into(),
        observed: format!(
            "{} requests of {} kinds, {errors} errors {:?}; RSS {:.0} → {:.0} MB ({:+.1} %); open files {fewest}–{most}",
            answers.len(),
            requests.len(),
            tally.statuses,
            first_rss / 1e6,
            last_rss / 1e6,
            growth * 100.0
        ),
        held: Some(held),
    })
}

/// A long line cut for the table.
fn shorten(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}
