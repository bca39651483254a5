//! The browser test of the test command: Debian's Chromium, driven by Playwright from the
//! tools venv (`python/tools/browser.py`), through the playground and a model card of a
//! running server, each rendered value compared with the API's answer; its screenshots go
//! to `artifacts/screenshots/` (the README's come from there).

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::paths::Paths;
use crate::python::Venv;
use crate::system;

/// Runs the browser test against the server at `port`.
pub fn run(paths: &Paths, port: u16, tools: &Venv) -> Result<()> {
    system::ensure(&[system::CHROMIUM])?;
    let shots = paths.artifacts().join("screenshots");
    let status = Command::new(tools.python())
        .arg(paths.root.join("python/tools/browser.py"))
        .args(["--base", &format!("http://127.0.0.1:{port}")])
        .arg("--golden")
        .arg(paths.root.join("golden"))
        .arg("--shots")
        .arg(&shots)
        .current_dir(&paths.root)
        .status()
        .context("cannot run python/tools/browser.py")?;
    if !status.success() {
        bail!("the browser test failed ({status}); its message is above");
    }
    Ok(())
}
