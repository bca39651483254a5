//! The Debian packages the test command needs beside Rust and Python (Chromium, for the
//! browser test of the playground; HAProxy, for the rolling restart), installed by the set-up like every other dependency:
//! what is missing is installed with `apt-get` (as root, or through `sudo` when it is
//! there), once per machine; a machine where neither can install says which command to run.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::progress::Progress;

/// Debian's package, and the file it must leave on the machine.
pub struct Package {
    pub name: &'static str,
    pub provides: &'static str,
}

/// Headless Chromium for `python/tools/browser.py` (Playwright drives it; it never
/// downloads a browser of its own).
pub const CHROMIUM: Package = Package {
    name: "chromium",
    provides: "/usr/bin/chromium",
};

/// The load balancer of the rolling-restart check (`rolling`).
pub const HAPROXY: Package = Package {
    name: "haproxy",
    provides: "/usr/sbin/haproxy",
};

fn installed(package: &Package) -> bool {
    std::path::Path::new(package.provides).is_file()
}

/// `apt-get` as root, or through `sudo` (non-interactive) for another user.
fn apt_get() -> Result<Command> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0");
    if root {
        return Ok(Command::new("apt-get"));
    }
    let sudo = Command::new("sudo").args(["-n", "true"]).stderr(Stdio::null()).status();
    if sudo.is_ok_and(|status| status.success()) {
        let mut command = Command::new("sudo");
        command.args(["-n", "apt-get"]);
        return Ok(command);
    }
    bail!("installing Debian packages needs root or passwordless sudo")
}

/// Installs whichever of `packages` is missing; says what it installed and how long it took.
pub fn ensure(packages: &[Package]) -> Result<()> {
    let missing: Vec<&Package> = packages.iter().filter(|package| !installed(package)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = missing.iter().map(|package| package.name).collect();
    let started = std::time::Instant::now();
    let spinner = Progress::spinner(&format!(
        "installing Debian packages {names:?} (apt-get; once per machine)"
    ));
    let run = |arguments: &[&str]| -> Result<()> {
        let mut command = apt_get().with_context(|| {
            format!(
                "cannot install {names:?}: run `apt-get install -y --no-install-recommends {}` as root, then again",
                names.join(" ")
            )
        })?;
        let output = command
            .args(arguments)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .context("cannot run apt-get")?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
            bail!(
                "apt-get {} failed: {}",
                arguments.join(" "),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        Ok(())
    };
    // A fresh machine's package lists may be empty or stale: read them once first.
    run(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&names);
    run(&install)?;
    for package in missing {
        if !installed(package) {
            bail!(
                "apt-get installed {} but {} is not there",
                package.name,
                package.provides
            );
        }
    }
    spinner.finish();
    eprintln!("    installed {names:?} in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Bytes free on the filesystem holding `path` (`df`), when it can be read.
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let output = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let kilobytes: u64 = text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()?;
    Some(kilobytes * 1024)
}

/// What a run of the test command writes at most on a cold cache: the clone's artifacts
/// (about 5 GB), the release build, the cache's new entries.
pub const RUN_NEEDS_BYTES: u64 = 12 * 1024 * 1024 * 1024;

/// Refuses to start a run that would fill the disk half way (as a run once did, restoring
/// its artifacts): names the free space and what takes it.
pub fn enough_disk(path: &std::path::Path) -> Result<()> {
    let Some(free) = free_bytes(path) else { return Ok(()) };
    if free < RUN_NEEDS_BYTES {
        bail!(
            "only {:.1} GB free on the disk of {}; a run needs about {:.0} GB. The artifact cache (`cargo xtask cache`, `--prune SIZE`) and old clones' artifacts/ are the usual room",
            free as f64 / 1e9,
            path.display(),
            RUN_NEEDS_BYTES as f64 / 1e9
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_read_from_df_and_an_unknown_path_has_none() {
        assert!(free_bytes(std::path::Path::new("/")).is_some_and(|bytes| bytes > 0));
        assert!(free_bytes(std::path::Path::new("/no/such/folder")).is_none());
    }

    /// Installs what the test command needs, as it would (`--ignored`: it changes the machine).
    #[test]
    #[ignore]
    fn the_test_commands_packages_install() {
        ensure(&[CHROMIUM, HAPROXY]).unwrap();
        assert!(installed(&CHROMIUM) && installed(&HAPROXY));
    }
}
