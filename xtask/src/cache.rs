//! The artifact cache: each step's outputs stored under the hash of everything that can
//! change them, outside the clone, so every clone on the machine shares them like the venv.
//!
//! A step asks [`Cache::restore`] with its [`Key`] before it runs; on a hit its outputs are
//! copied back (after their content is checked against the entry's manifest) and the step
//! does not run. After a step runs, [`Cache::store`] files its outputs under the key. An
//! entry is written in a scratch folder and renamed into place, so a run that dies leaves
//! no half entry, and two clones storing the same key at once keep one. Hits, misses and
//! stores are appended to `events.log`, which `cargo xtask cache` summarizes.
//!
//! Entries are copies, never links: a step that rewrites a file in place (as `torch.save`
//! does) must not change what the cache holds.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::paths;
use crate::stamp;

/// Bumped when an entry's layout or a key's recipe changes, so old entries stop matching.
const FORMAT: &str = "modelcrate-cache-1";

/// The hash of everything that can change a step's outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

/// Builds a [`Key`] from labelled parts. Labels, not paths, name the parts, and files
/// inside a folder are named relative to it, so the key of the same inputs is the same
/// in every clone and wherever `MODELCRATE_ARTIFACTS` puts the artifacts.
pub struct KeyBuilder {
    hasher: Sha256,
}

impl KeyBuilder {
    pub fn new(step: &str) -> Self {
        let mut builder = Self { hasher: Sha256::new() };
        builder.part("format", FORMAT.as_bytes());
        builder.part("step", step.as_bytes());
        builder
    }

    /// A value that is not a file: a version, a CPU model, a variant name.
    pub fn text(mut self, label: &str, value: &str) -> Self {
        self.part(label, value.as_bytes());
        self
    }

    /// A file's or a folder's content (a missing one hashes as missing).
    pub fn path(mut self, label: &str, path: &Path) -> Result<Self> {
        self.part("path", label.as_bytes());
        stamp::hash_tree(&mut self.hasher, path, path)?;
        Ok(self)
    }

    /// `text` hashed as [`Self::path`] hashes a file holding it: the part of a file that a
    /// step reads, keyed as the whole file would be when that part is all of it.
    pub fn file_text(mut self, label: &str, text: &str) -> Self {
        self.part("path", label.as_bytes());
        // Reading from a byte slice cannot fail.
        let _ = stamp::hash_file(&mut self.hasher, "", text.as_bytes());
        self
    }

    pub fn finish(self) -> Key {
        Key(format!("{:x}", self.hasher.finalize()))
    }

    fn part(&mut self, label: &str, value: &[u8]) {
        // Lengths first, so that no two different part lists hash alike.
        self.hasher.update((label.len() as u64).to_le_bytes());
        self.hasher.update(label.as_bytes());
        self.hasher.update((value.len() as u64).to_le_bytes());
        self.hasher.update(value);
    }
}

/// One output of a step: where it lives in this clone, and the name it has in an entry.
pub struct Output {
    pub slot: String,
    pub path: PathBuf,
}

impl Output {
    pub fn new(slot: impl Into<String>, path: PathBuf) -> Self {
        Self {
            slot: slot.into(),
            path,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    step: String,
    model: String,
    /// Seconds since the epoch when the entry was stored.
    stored: u64,
    /// Outputs present when the step ran; the others were absent and are removed on restore.
    present: Vec<String>,
    absent: Vec<String>,
    /// The hash of `files/`, checked before every restore.
    content: String,
    bytes: u64,
}

/// What [`Cache::restore`] found.
pub enum Lookup {
    /// The outputs were put in place from the cache.
    Hit,
    /// Nothing under this key (or the cache is off): the step must run.
    Miss,
}

pub struct Cache {
    dir: PathBuf,
}

/// What turns the cache off: `MODELCRATE_CACHE=off`.
const OFF: &str = "off";

impl Cache {
    /// `MODELCRATE_CACHE` (a folder, or `off`), else `~/.cache/modelcrate/artifacts`.
    /// `None` when the cache is off.
    pub fn open() -> Result<Option<Self>> {
        let dir = match std::env::var_os("MODELCRATE_CACHE").filter(|v| !v.is_empty()) {
            Some(value) if value == OFF => return Ok(None),
            Some(value) => PathBuf::from(value),
            None => Self::default_dir()?,
        };
        Ok(Some(Self { dir }))
    }

    pub fn default_dir() -> Result<PathBuf> {
        Ok(paths::machine_cache()?.join("artifacts"))
    }

    /// A cache in `dir` (for the tests).
    #[cfg(test)]
    pub fn at(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, key: &Key) -> PathBuf {
        self.dir.join("entries").join(&key.0[..2]).join(&key.0)
    }

    /// Puts the outputs stored under `key` in place. An entry whose files no longer match
    /// its manifest is removed and counts as a miss, so a damaged cache can't hand out a
    /// wrong artifact.
    pub fn restore(&self, step: &str, model: &str, key: &Key, outputs: &[Output]) -> Result<Lookup> {
        let entry = self.entry(key);
        let manifest_path = entry.join("manifest.json");
        let Ok(text) = fs::read_to_string(&manifest_path) else {
            self.log("miss", step, model, key, 0);
            return Ok(Lookup::Miss);
        };
        let manifest: Manifest = match serde_json::from_str(&text) {
            Ok(manifest) => manifest,
            Err(error) => return self.discard(&entry, step, model, key, &format!("unreadable manifest: {error}")),
        };
        let files = entry.join("files");
        let mut wanted: Vec<&str> = outputs.iter().map(|o| o.slot.as_str()).collect();
        wanted.sort_unstable();
        let mut recorded: Vec<&str> = manifest
            .present
            .iter()
            .chain(&manifest.absent)
            .map(String::as_str)
            .collect();
        recorded.sort_unstable();
        if recorded != wanted {
            return self.discard(&entry, step, model, key, "its outputs are not the step's outputs");
        }
        if content_hash(&files)? != manifest.content {
            return self.discard(&entry, step, model, key, "its files differ from its manifest");
        }
        for output in outputs {
            remove(&output.path)?;
            if manifest.present.contains(&output.slot) {
                copy_into_place(&files.join(&output.slot), &output.path)?;
            }
        }
        // The manifest's modification time marks the entry's last use, for `prune`.
        let _ = fs::File::options()
            .append(true)
            .open(&manifest_path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        self.log("hit", step, model, key, manifest.bytes);
        Ok(Lookup::Hit)
    }

    /// Removes the entry under `key`, if any (`--force` redoes a step and stores anew).
    pub fn forget(&self, key: &Key) {
        let _ = fs::remove_dir_all(self.entry(key));
    }

    fn discard(&self, entry: &Path, step: &str, model: &str, key: &Key, why: &str) -> Result<Lookup> {
        eprintln!(
            "    cache entry {} of {step} {model} is damaged ({why}): removed, the step runs",
            key.short()
        );
        let _ = fs::remove_dir_all(entry);
        self.log("damaged", step, model, key, 0);
        Ok(Lookup::Miss)
    }

    /// Files `outputs` under `key`. Present outputs are copied; absent ones are recorded
    /// as absent, so a restore removes them too.
    pub fn store(&self, step: &str, model: &str, key: &Key, outputs: &[Output]) -> Result<()> {
        let entry = self.entry(key);
        if entry.join("manifest.json").is_file() {
            return Ok(());
        }
        let scratch = self
            .dir
            .join("scratch")
            .join(format!("{}-{}", key.0, std::process::id()));
        let _ = fs::remove_dir_all(&scratch);
        let bytes = match Self::fill(&scratch, step, model, outputs) {
            Ok(bytes) => bytes,
            Err(error) => {
                let _ = fs::remove_dir_all(&scratch);
                return Err(error);
            }
        };
        if let Some(parent) = entry.parent() {
            fs::create_dir_all(parent)?;
        }
        // Another clone may have stored the same key meanwhile: theirs stays, ours goes.
        if fs::rename(&scratch, &entry).is_err() {
            let _ = fs::remove_dir_all(&scratch);
        }
        self.log("store", step, model, key, bytes);
        Ok(())
    }

    /// Writes an entry's files and manifest into `scratch`; returns its size.
    fn fill(scratch: &Path, step: &str, model: &str, outputs: &[Output]) -> Result<u64> {
        let files = scratch.join("files");
        fs::create_dir_all(&files).with_context(|| format!("cannot create {}", files.display()))?;
        let (mut present, mut absent) = (Vec::new(), Vec::new());
        for output in outputs {
            if output.path.exists() {
                let stored = files.join(&output.slot);
                if let Some(parent) = stored.parent() {
                    fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
                }
                copy_tree(&output.path, &stored)?;
                present.push(output.slot.clone());
            } else {
                absent.push(output.slot.clone());
            }
        }
        let manifest = Manifest {
            format: FORMAT.into(),
            step: step.into(),
            model: model.into(),
            stored: now(),
            present,
            absent,
            content: content_hash(&files)?,
            bytes: size(&files),
        };
        fs::write(
            scratch.join("manifest.json"),
            serde_json::to_string_pretty(&manifest)? + "\n",
        )?;
        Ok(manifest.bytes)
    }

    fn log(&self, event: &str, step: &str, model: &str, key: &Key, bytes: u64) {
        // A log that can't be written costs the statistics, never the run.
        let _ = fs::create_dir_all(&self.dir);
        let line = format!("{}\t{event}\t{step}\t{model}\t{}\t{bytes}\n", now(), key.short());
        if let Ok(mut file) = fs::File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("events.log"))
        {
            let _ = file.write_all(line.as_bytes());
        }
    }

    /// Every entry, oldest use first.
    pub fn entries(&self) -> Result<Vec<EntryInfo>> {
        let mut entries = Vec::new();
        let root = self.dir.join("entries");
        for shard in read_dir(&root)? {
            for entry in read_dir(&shard)? {
                let manifest_path = entry.join("manifest.json");
                let manifest: Option<Manifest> = fs::read_to_string(&manifest_path)
                    .ok()
                    .and_then(|text| serde_json::from_str(&text).ok());
                let used = fs::metadata(&manifest_path)
                    .and_then(|m| m.modified())
                    .map_or(0, |t| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
                entries.push(EntryInfo {
                    bytes: size(&entry),
                    step: manifest.as_ref().map_or_else(|| "(damaged)".into(), |m| m.step.clone()),
                    used,
                    path: entry,
                });
            }
        }
        entries.sort_by_key(|e| e.used);
        Ok(entries)
    }

    /// Removes the least recently used entries until the cache holds at most `bound`
    /// bytes; returns (entries removed, bytes freed).
    pub fn prune(&self, bound: u64) -> Result<(usize, u64)> {
        let entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        let (mut removed, mut freed) = (0, 0);
        for entry in entries {
            if total <= bound {
                break;
            }
            fs::remove_dir_all(&entry.path).with_context(|| format!("cannot remove {}", entry.path.display()))?;
            total -= entry.bytes;
            freed += entry.bytes;
            removed += 1;
        }
        let _ = fs::remove_dir_all(self.dir.join("scratch"));
        Ok((removed, freed))
    }

    /// Every event of `events.log`.
    pub fn events(&self) -> Vec<Event> {
        let text = fs::read_to_string(self.dir.join("events.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let time = fields.next()?.parse().ok()?;
                let kind = fields.next()?.to_string();
                let step = fields.next()?.to_string();
                Some(Event { time, kind, step })
            })
            .collect()
    }
}

pub struct EntryInfo {
    pub path: PathBuf,
    pub step: String,
    pub bytes: u64,
    /// Seconds since the epoch of the entry's last store or restore.
    pub used: u64,
}

/// A line of `events.log` (which also names the model, the key and the bytes).
pub struct Event {
    /// Seconds since the epoch.
    pub time: u64,
    /// `hit`, `miss`, `store` or `damaged`.
    pub kind: String,
    pub step: String,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    Ok(paths)
}

fn content_hash(dir: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    stamp::hash_tree(&mut hasher, dir, dir)?;
    Ok(format!("{:x}", hasher.finalize()))
}

fn size(path: &Path) -> u64 {
    if path.is_dir() {
        fs::read_dir(path)
            .map(|entries| entries.filter_map(|e| e.ok()).map(|e| size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        fs::metadata(path).map_or(0, |m| m.len())
    }
}

fn remove(path: &Path) -> Result<()> {
    let result = if path.is_dir() {
        fs::remove_dir_all(path)
    } else if path.exists() {
        fs::remove_file(path)
    } else {
        return Ok(());
    };
    result.with_context(|| format!("cannot remove {}", path.display()))
}

/// Copies `from` to a scratch name beside `to`, then renames it into place, so a restore
/// cut short leaves no half file under the real name.
fn copy_into_place(from: &Path, to: &Path) -> Result<()> {
    let name = to
        .file_name()
        .with_context(|| format!("{} has no file name", to.display()))?
        .to_string_lossy();
    // `.tmp` names are left out of stamps' hashes.
    let scratch = to.with_file_name(format!("{name}.restore.tmp"));
    remove(&scratch)?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    copy_tree(from, &scratch)?;
    fs::rename(&scratch, to).with_context(|| format!("cannot move {} into place", to.display()))
}

/// Copies a file, or a folder recursively, leaving out what hashes leave out.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
        for entry in read_dir(from)? {
            let name = entry
                .file_name()
                .with_context(|| format!("{} has no file name", entry.display()))?;
            if stamp::ignored(name) {
                continue;
            }
            copy_tree(&entry, &to.join(name))?;
        }
        Ok(())
    } else if from.is_file() {
        fs::copy(from, to)
            .map(drop)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
    } else {
        bail!("{} is neither a file nor a folder", from.display())
    }
}

/// Parses a size such as `20G`, `500M`, `1.5G` or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => bail!("`{text}` is not a size: write bytes or a number with K, M, G or T"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .with_context(|| format!("`{text}` is not a size: write bytes or a number with K, M, G or T"))?;
    if !(value.is_finite() && value >= 0.0) {
        bail!("`{text}` is not a size: it must be a positive number");
    }
    Ok((value * scale as f64) as u64)
}

/// A size for people: `1.2 GB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    #[test]
    fn text_keys_as_a_file_holding_it_would() {
        let scratch = ScratchDir::new("file-text");
        let file = scratch.join("spec.json");
        fs::write(&file, "{\"name\": \"m\"}\n").unwrap();
        let of_file = KeyBuilder::new("train")
            .path("artifact/spec.json", &file)
            .unwrap()
            .finish();
        let of_text = |text: &str| KeyBuilder::new("train").file_text("artifact/spec.json", text).finish();
        assert_eq!(of_text("{\"name\": \"m\"}\n"), of_file);
        assert_ne!(of_text("{\"name\": \"n\"}\n"), of_file);
    }

    fn outputs(dir: &Path) -> Vec<Output> {
        vec![
            Output::new("artifact/checkpoint", dir.join("checkpoint")),
            Output::new("artifact/metrics.json", dir.join("metrics.json")),
            Output::new("artifact/onnx/pooling.json", dir.join("pooling.json")),
        ]
    }

    /// A step's outputs: a folder and a file; `pooling.json` is absent.
    fn make_outputs(dir: &Path, weights: &[u8]) {
        fs::create_dir_all(dir.join("checkpoint/nested")).unwrap();
        fs::write(dir.join("checkpoint/model.safetensors"), weights).unwrap();
        fs::write(dir.join("checkpoint/nested/config.json"), "{}").unwrap();
        fs::write(dir.join("metrics.json"), r#"{"accuracy": 0.97}"#).unwrap();
    }

    fn key(text: &str) -> Key {
        KeyBuilder::new("train").text("spec", text).finish()
    }

    #[test]
    fn a_stored_entry_restores_the_same_outputs_into_another_clone() {
        let scratch = ScratchDir::new("cache-restore");
        let cache = Cache::at(scratch.join("cache"));
        let first = scratch.join("first");
        make_outputs(&first, b"weights");
        cache.store("train", "m", &key("a"), &outputs(&first)).unwrap();

        let second = scratch.join("second");
        // Something stale where the absent output would be: a restore removes it.
        fs::create_dir_all(&second).unwrap();
        fs::write(second.join("pooling.json"), "stale").unwrap();
        let hit = cache.restore("train", "m", &key("a"), &outputs(&second)).unwrap();
        assert!(matches!(hit, Lookup::Hit));
        assert_eq!(content_hash(&first).unwrap(), content_hash(&second).unwrap());
        assert!(!second.join("pooling.json").exists());

        let other = cache
            .restore("train", "m", &key("b"), &outputs(&scratch.join("third")))
            .unwrap();
        assert!(matches!(other, Lookup::Miss));
        let kinds: Vec<String> = cache.events().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["store", "hit", "miss"]);
    }

    #[test]
    fn a_damaged_entry_is_removed_and_counts_as_a_miss() {
        let scratch = ScratchDir::new("cache-damaged");
        let cache = Cache::at(scratch.join("cache"));
        let first = scratch.join("first");
        make_outputs(&first, b"weights");
        cache.store("train", "m", &key("a"), &outputs(&first)).unwrap();
        let stored = cache
            .entry(&key("a"))
            .join("files/artifact/checkpoint/model.safetensors");
        fs::write(&stored, b"weightz").unwrap();

        let second = scratch.join("second");
        let lookup = cache.restore("train", "m", &key("a"), &outputs(&second)).unwrap();
        assert!(matches!(lookup, Lookup::Miss));
        assert!(
            !second.join("checkpoint").exists(),
            "nothing of a damaged entry is restored"
        );
        assert!(!cache.entry(&key("a")).exists());
    }

    #[test]
    fn an_entry_with_other_outputs_than_the_step_asks_for_is_not_restored() {
        let scratch = ScratchDir::new("cache-slots");
        let cache = Cache::at(scratch.join("cache"));
        let first = scratch.join("first");
        make_outputs(&first, b"weights");
        cache.store("train", "m", &key("a"), &outputs(&first)).unwrap();
        let fewer = &outputs(&scratch.join("second"))[..2];
        assert!(matches!(
            cache.restore("train", "m", &key("a"), fewer).unwrap(),
            Lookup::Miss
        ));
    }

    #[test]
    fn prune_removes_the_least_recently_used_entries_first() {
        let scratch = ScratchDir::new("cache-prune");
        let cache = Cache::at(scratch.join("cache"));
        for (name, weights) in [("old", vec![1u8; 4000]), ("new", vec![2u8; 4000])] {
            let dir = scratch.join(name);
            make_outputs(&dir, &weights);
            cache.store("train", "m", &key(name), &outputs(&dir)).unwrap();
        }
        let past = SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .append(true)
            .open(cache.entry(&key("old")).join("manifest.json"))
            .unwrap()
            .set_modified(past)
            .unwrap();
        let total: u64 = cache.entries().unwrap().iter().map(|e| e.bytes).sum();
        let (removed, _) = cache.prune(total - 1).unwrap();
        assert_eq!(removed, 1);
        assert!(cache.entry(&key("new")).exists());
        assert!(!cache.entry(&key("old")).exists());
        assert_eq!(cache.prune(0).unwrap().0, 1);
        assert!(cache.entries().unwrap().is_empty());
    }

    #[test]
    fn keys_name_their_parts_so_moving_a_byte_between_parts_changes_them() {
        let a = KeyBuilder::new("s").text("x", "ab").text("y", "c").finish();
        let b = KeyBuilder::new("s").text("x", "a").text("y", "bc").finish();
        assert_ne!(a, b);
        assert_ne!(KeyBuilder::new("train").finish(), KeyBuilder::new("export").finish());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("20G").unwrap(), 20 << 30);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("500MB").unwrap(), 500 << 20);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5Q").is_err());
    }
}
