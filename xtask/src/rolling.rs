//! The contract `deploy/`'s manifests rely on, proved on this machine: two replicas of the
//! server, run from the bundle (`bundle`) with the settings the manifests give them,
//! behind HAProxy (Debian's, as a cluster's load balancer would sit) with a readiness
//! check on `/health/ready`; clients send predictions through it without pause while each
//! replica in turn gets SIGTERM, leaves (readiness 503, still answering for
//! `--shutdown-delay-ms`), drains, exits and is started again. Every request must be
//! answered: the figures (sent, answered, failed) are printed and any failure fails the
//! test command. HAProxy retries nothing (`retries 0`, no `redispatch`), so an answer is
//! the server's doing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::paths::Paths;
use crate::pipeline::release_binary;
use crate::process;
use crate::smoke::{Server, free_port, request_at};
use crate::system;

/// What the manifests set (deploy/kubernetes/deployment.yaml): answered while leaving for
/// longer than HAProxy's check takes to mark a replica down (`inter` × `fall` below).
const SHUTDOWN_DELAY_MS: u64 = 2_000;
const DRAIN_TIMEOUT_MS: u64 = 10_000;
const CHECK_INTERVAL_MS: u64 = 250;
const CLIENTS: usize = 4;
/// The model the clients ask; every model loads (the bundle's completeness).
const MODEL: &str = "news-topic";
const BODY: &str = r#"{"inputs": "The central bank raised interest rates again to curb inflation."}"#;

/// One replica as the image runs it (deploy/Dockerfile's environment).
fn replica(paths: &Paths, bundle: &Path, ort_dylib: &Path, port: u16) -> Result<Server> {
    let binary = release_binary(paths, "modelcrate-server");
    let child = Command::new(&binary)
        .env("ORT_DYLIB_PATH", ort_dylib)
        .env("MODELCRATE_ARTIFACTS", bundle.join("models"))
        .env("MODELCRATE_GOLDEN", bundle.join("golden"))
        .env("MODELCRATE_HOST", "127.0.0.1")
        .env("MODELCRATE_PORT", port.to_string())
        .env("MODELCRATE_WATCH_INTERVAL_MS", "0")
        .env("MODELCRATE_SHUTDOWN_DELAY_MS", SHUTDOWN_DELAY_MS.to_string())
        .env("MODELCRATE_DRAIN_TIMEOUT_MS", DRAIN_TIMEOUT_MS.to_string())
        .env("MODELCRATE_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let mut server = Server::new(child);
    server.wait_ready("127.0.0.1", port, "/health/ready", Duration::from_secs(120))?;
    Ok(server)
}

fn haproxy_config(front: u16, stats: u16, replicas: [u16; 2]) -> String {
    format!(
        "global\n    maxconn 256\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    retries 0\n\
         frontend predictions\n    bind 127.0.0.1:{front}\n    default_backend replicas\n\
         frontend stats\n    bind 127.0.0.1:{stats}\n    http-request return status 200 content-type text/plain lf-string \"%[nbsrv(replicas)]\"\n\
         backend replicas\n    balance roundrobin\n    option httpchk GET /health/ready\n    http-check expect status 200\n\
         \x20   default-server inter {CHECK_INTERVAL_MS}ms fall 1 rise 2\n\
         \x20   server a 127.0.0.1:{} check\n    server b 127.0.0.1:{} check\n",
        replicas[0], replicas[1]
    )
}

/// How many replicas HAProxy has up.
fn up(stats: u16) -> usize {
    request_at("127.0.0.1", stats, "GET", "/", "")
        .ok()
        .and_then(|(_, body)| body.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_up(stats: u16, want: usize, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    while up(stats) != want {
        if Instant::now() > deadline {
            bail!("HAProxy has {} replicas up, not {want}, after {within:?}", up(stats));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
}

/// A process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    process::peak_rss(pid).unwrap_or(0)
}

/// Runs the check; prints the figures; returns the highest peak RSS of a replica
/// (every model loaded and warmed up, then serving).
pub fn run(paths: &Paths, ort_dylib: &Path, bundle: &Path) -> Result<u64> {
    system::ensure(&[system::HAPROXY])?;
    let ports = [free_port()?, free_port()?];
    let (front, stats) = (free_port()?, free_port()?);
    let mut replicas = vec![
        replica(paths, bundle, ort_dylib, ports[0])?,
        replica(paths, bundle, ort_dylib, ports[1])?,
    ];
    let config: PathBuf = paths.artifacts().join("logs").join("haproxy.cfg");
    std::fs::create_dir_all(config.parent().context("the logs folder")?)?;
    std::fs::write(&config, haproxy_config(front, stats, ports))?;
    let balancer = Server::new(
        Command::new(system::HAPROXY.provides)
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start haproxy")?,
    );
    wait_up(stats, 2, Duration::from_secs(10))?;
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (tally, stop, failures) = (Arc::clone(&tally), Arc::clone(&stop), Arc::clone(&failures));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    tally.sent.fetch_add(1, Ordering::SeqCst);
                    match request_at("127.0.0.1", front, "POST", &format!("/models/{MODEL}/predict"), BODY) {
                        Ok((200, _)) => drop(tally.answered.fetch_add(1, Ordering::SeqCst)),
                        other => {
                            tally.failed.fetch_add(1, Ordering::SeqCst);
                            if let Ok(mut seen) = failures.lock()
                                && seen.len() < 5
                            {
                                seen.push(format!("{other:?}"));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    let mut peak = 0;
    std::thread::sleep(Duration::from_secs(2));
    // The rolling restart: each replica in turn, as a Deployment's rollout replaces pods.
    for index in 0..2 {
        let old = replicas.remove(0);
        let pid = old.id();
        peak = peak.max(peak_rss(pid));
        let restart = Instant::now();
        old.terminate_and_wait(Duration::from_millis(SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS + 5_000))?;
        let new = replica(paths, bundle, ort_dylib, ports[index])?;
        wait_up(stats, 2, Duration::from_secs(10))?;
        eprintln!(
            "    replica {} (pid {pid}) replaced by pid {} in {:.1}s while the clients sent on",
            ["a", "b"][index],
            new.id(),
            restart.elapsed().as_secs_f64()
        );
        replicas.push(new);
        std::thread::sleep(Duration::from_secs(1));
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        let _ = client.join();
    }
    for replica in &replicas {
        peak = peak.max(peak_rss(replica.id()));
    }
    drop(balancer);
    drop(replicas);
    let (sent, answered, failed) = (
        tally.sent.load(Ordering::SeqCst),
        tally.answered.load(Ordering::SeqCst),
        tally.failed.load(Ordering::SeqCst),
    );
    eprintln!(
        "    rolling restart of 2 replicas behind HAProxy under load: {sent} requests sent, {answered} answered, {failed} failed in {:.1}s ({CLIENTS} clients)",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 || answered != sent {
        let seen = failures.lock().map(|seen| seen.join("; ")).unwrap_or_default();
        bail!("{failed} of {sent} requests failed during the rolling restart: {seen}");
    }
    eprintln!(
        "    a replica's peak RSS, every model loaded from the bundle: {:.0} MB",
        peak as f64 / 1e6
    );
    Ok(peak)
}
