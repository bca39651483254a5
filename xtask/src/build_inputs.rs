//! What of `Cargo.lock` and the workspace manifest a check's binaries are built from.
//!
//! A parity or measure check runs the parity and bench crates' binaries, which link the
//! inference core, the runtime and every generated model. Their key holds the registry
//! crates those binaries are built against — the dependency closure of the parity and
//! bench crates in `Cargo.lock`, dev-dependencies included — and the workspace manifest
//! with only those crates' entries of `[workspace.dependencies]`. A crate only the server
//! or the xtask uses (a progress bar, a chart writer, a log format) then re-runs no check.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::{Context, Result};

/// The workspace members whose builds the checks run: everything else they link is in
/// their closure.
pub const CHECK_CRATES: [&str; 2] = ["modelcrate-parity", "modelcrate-bench"];

/// One `[[package]]` of `Cargo.lock`.
struct Package {
    name: String,
    version: String,
    /// `None` for a workspace member.
    checksum: Option<String>,
    registry: bool,
    /// As the lock writes them: `name`, or `name version` where the name is ambiguous.
    dependencies: Vec<String>,
}

fn read_toml(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))
}

fn packages(lock: &Path) -> Result<Vec<Package>> {
    let parsed = read_toml(lock)?;
    let text =
        |package: &toml::Value, field: &str| package.get(field).and_then(toml::Value::as_str).map(str::to_string);
    let entries = parsed.get("package").and_then(toml::Value::as_array);
    Ok(entries
        .into_iter()
        .flatten()
        .map(|package| Package {
            name: text(package, "name").unwrap_or_default(),
            version: text(package, "version").unwrap_or_default(),
            checksum: text(package, "checksum"),
            registry: package.get("source").is_some(),
            dependencies: package
                .get("dependencies")
                .and_then(toml::Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(toml::Value::as_str)
                .map(str::to_string)
                .collect(),
        })
        .collect())
}

/// The registry packages that `roots` (package names) depend on, directly or not, one
/// line each (`name version checksum`), sorted; and the names of every package reached.
pub fn closure(lock: &Path, roots: &[&str]) -> Result<(String, BTreeSet<String>)> {
    let packages = packages(lock)?;
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, package) in packages.iter().enumerate() {
        by_name.entry(package.name.as_str()).or_default().push(index);
    }
    // A dependency is `name`, `name version` or `name version (source)`.
    let resolve = |reference: &str| -> Vec<usize> {
        let mut parts = reference.split(' ');
        let name = parts.next().unwrap_or_default();
        let version = parts.next();
        by_name
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&index| version.is_none_or(|version| packages[index].version == version))
            .collect()
    };
    let mut reached = BTreeSet::new();
    let mut stack: Vec<usize> = roots.iter().flat_map(|root| resolve(root)).collect();
    while let Some(index) = stack.pop() {
        if reached.insert(index) {
            stack.extend(packages[index].dependencies.iter().flat_map(|d| resolve(d)));
        }
    }
    let mut lines: Vec<String> = reached
        .iter()
        .map(|&index| &packages[index])
        .filter(|package| package.registry)
        .map(|package| {
            let checksum = package.checksum.as_deref().unwrap_or("");
            format!("{} {} {checksum}", package.name, package.version)
        })
        .collect();
    lines.sort();
    let names = reached.iter().map(|&index| packages[index].name.clone()).collect();
    Ok((lines.join("\n"), names))
}

/// The workspace manifest with `[workspace.dependencies]` cut to the crates in `names`:
/// the rest (members, profiles, lints, the kept entries' versions and features) as it is.
pub fn manifest_for(manifest: &Path, names: &BTreeSet<String>) -> Result<String> {
    let mut parsed = read_toml(manifest)?;
    if let Some(dependencies) = parsed
        .get_mut("workspace")
        .and_then(|workspace| workspace.get_mut("dependencies"))
        .and_then(toml::Value::as_table_mut)
    {
        dependencies.retain(|key, value| {
            let package = value.get("package").and_then(toml::Value::as_str).unwrap_or(key);
            names.contains(package)
        });
    }
    toml::to_string(&parsed).with_context(|| format!("cannot write {} back as TOML", manifest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "modelcrate-parity"
version = "0.1.0"
dependencies = ["ort", "serde 1.0.0"]

[[package]]
name = "modelcrate-server"
version = "0.1.0"
dependencies = ["modelcrate-parity", "indicatif"]

[[package]]
name = "ort"
version = "2.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "aa"
dependencies = ["ort-sys"]

[[package]]
name = "ort-sys"
version = "2.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "bb"

[[package]]
name = "serde"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "cc"

[[package]]
name = "serde"
version = "0.9.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "dd"

[[package]]
name = "indicatif"
version = "0.18.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "ee"
"#;

    #[test]
    fn the_closure_holds_what_the_roots_reach_and_no_more() {
        let dir = ScratchDir::new("closure");
        let lock = dir.join("Cargo.lock");
        std::fs::write(&lock, LOCK).unwrap();
        let (lines, names) = closure(&lock, &["modelcrate-parity"]).unwrap();
        assert_eq!(lines, "ort 2.0.0 aa\nort-sys 2.0.0 bb\nserde 1.0.0 cc");
        assert!(names.contains("modelcrate-parity") && !names.contains("indicatif"));
        let (lines, _) = closure(&lock, &["modelcrate-server"]).unwrap();
        assert!(lines.contains("indicatif 0.18.0 ee") && !lines.contains("serde 0.9.0"));
    }

    #[test]
    fn the_manifest_keeps_only_the_closures_workspace_dependencies() {
        let dir = ScratchDir::new("manifest");
        let manifest = dir.join("Cargo.toml");
        std::fs::write(
            &manifest,
            "[workspace]\nmembers = [\"a\"]\n\n[workspace.dependencies]\nort = { version = \"2\", features = [\"x\"] }\nindicatif = \"0.18\"\nmy-serde = { package = \"serde\", version = \"1\" }\n\n[profile.release]\nlto = true\n",
        )
        .unwrap();
        let names = BTreeSet::from(["ort".to_string(), "serde".to_string()]);
        let kept = manifest_for(&manifest, &names).unwrap();
        assert!(
            kept.contains("features = [\"x\"]") && kept.contains("my-serde") && kept.contains("lto = true"),
            "{kept}"
        );
        assert!(!kept.contains("indicatif"), "{kept}");
    }
}
