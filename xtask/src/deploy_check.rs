//! `deploy/` checked by the test command (`python/tools/manifests.py`, in the tools venv):
//! the Kubernetes manifests against the Kubernetes API's schemas, the KServe ones against
//! KServe's, the Dockerfile's runtime stage, and the contract between them and the server
//! (grace period, probes, port, and a memory request that holds the peak RSS the rolling
//! restart measured).

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::paths::Paths;
use crate::python::Venv;

pub fn manifests(paths: &Paths, peak_rss_bytes: u64) -> Result<()> {
    let tools = Venv::tools(paths)?;
    let status = Command::new(tools.python())
        .arg(paths.root.join("python/tools/manifests.py"))
        .arg("--deploy")
        .arg(paths.root.join("deploy"))
        .args(["--rss-bytes", &peak_rss_bytes.to_string()])
        .current_dir(&paths.root)
        .status()
        .context("cannot run python/tools/manifests.py")?;
    if !status.success() {
        bail!("deploy/ failed its checks ({status}); the failure is named above");
    }
    Ok(())
}
