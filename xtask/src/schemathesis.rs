//! Property-based testing of the live server from its own `/openapi.json`, with
//! Schemathesis (tools venv): every route and method, valid and invalid bodies, path
//! and query parameters and headers generated from the document, and every check it has
//! (no 5xx, statuses and content types documented, answers fitting their schemas, invalid
//! requests refused, valid ones accepted; the exceptions no schema can state are in
//! `python/tools/schemathesis.toml`, each with its reason). The seed is fixed, so a run
//! repeats the last one's cases; `MODELCRATE_SCHEMATHESIS_SEED` explores others, and
//! `MODELCRATE_SCHEMATHESIS_EXAMPLES` asks for more per operation.

use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::paths::Paths;
use crate::python::Venv;

/// The seed of the test command's run.
const SEED: u64 = 20261206;
/// Examples per operation and phase: about 2,000 cases over the 32 operations.
const EXAMPLES: u32 = 25;

/// The admin token the server under test is started with, so that the admin route is
/// tested past its refusal.
pub const ADMIN_TOKEN: &str = "schemathesis-admin-token";

/// Runs Schemathesis against the server on `port`, started with [`ADMIN_TOKEN`]; fails
/// on any failure or error, with Schemathesis's own report of each.
pub fn run(paths: &Paths, port: u16, tools: &Venv) -> Result<()> {
    let seed = setting("MODELCRATE_SCHEMATHESIS_SEED", SEED)?;
    let examples = setting("MODELCRATE_SCHEMATHESIS_EXAMPLES", EXAMPLES)?;
    let report = paths.artifacts().join("schemathesis.json");
    let _ = std::fs::remove_file(&report);
    let output = Command::new(tools.python())
        .args(["-m", "schemathesis.cli", "--no-color", "--config-file"])
        .arg(paths.root.join("python/tools/schemathesis.toml"))
        .arg("run")
        .arg(format!("http://127.0.0.1:{port}/openapi.json"))
        .args(["--checks", "all", "--workers", "2", "--generation-database", "none"])
        .args(["--max-examples", &examples.to_string(), "--seed", &seed.to_string()])
        .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args(["--report", "json", "--report-json-path"])
        .arg(&report)
        .current_dir(&paths.root)
        .output()
        .context("cannot run python -m schemathesis.cli (tools venv)")?;
    let printed = String::from_utf8_lossy(&output.stdout);
    let summary = std::fs::read_to_string(&report)
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let Some(summary) = summary.filter(|_| output.status.success()) else {
        bail!(
            "Schemathesis found failures in the server's answers (seed {seed}; {}):\n{printed}{}",
            report.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let count = |pointer: &str| summary.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    eprintln!(
        "    schemathesis: {} cases generated over {} operations, {} failed, {} errored (seed {seed}, {} s)",
        count("/test_cases/generated"),
        count("/operations/tested"),
        count("/test_cases/with_failures"),
        count("/test_cases/errored"),
        summary["running_time"].as_f64().map_or(0.0, |seconds| seconds.round()),
    );
    Ok(())
}

/// The environment's `name` as a number, or `default`.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(value) => value
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={value:?} is not a whole number")),
        Err(_) => Ok(default),
    }
}
