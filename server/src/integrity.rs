//! The files of a model checked against `onnx/checksums.json` before they are loaded, at
//! start and at every reload: `cargo xtask select` records the size and SHA-256 of every
//! file the server loads of the model (`xtask/src/checksums.rs` writes the format read
//! here). A file missing, cut short, corrupted or replaced since is refused by name, and
//! the model is not loaded from it: at start the server does not start; at a reload the
//! serving model serves on. ONNX Runtime alone would load weights with flipped bytes and
//! answer from them.
//!
//! A folder without `checksums.json` (files exported by hand, a pipeline older than the
//! file) is loaded unchecked, with a warning; so is a variant the record does not list
//! (`--variant` naming another than the serving one).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The record's name in each model's ONNX folder.
pub const CHECKSUMS_FILE: &str = "checksums.json";

/// One file as the record has it.
#[derive(Debug, Deserialize)]
struct Recorded {
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Deserialize)]
struct Checksums {
    files: BTreeMap<String, Recorded>,
}

/// What the check found wrong, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error("{0} cannot be read as the record of checksums `cargo xtask select` writes: {1}")]
    Record(String, String),
    #[error("{file} is missing, and {record} lists it: the model's folder is incomplete")]
    Missing { file: String, record: String },
    #[error(
        "{file} is {bytes} bytes and {record} records {recorded}: it was cut short or replaced since `cargo xtask select` recorded it"
    )]
    Size {
        file: String,
        bytes: u64,
        recorded: u64,
        record: String,
    },
    #[error(
        "{file}'s SHA-256 is {sha256}, and {record} records {recorded}: it is corrupted or was replaced since `cargo xtask select` recorded it"
    )]
    Digest {
        file: String,
        sha256: String,
        recorded: String,
        record: String,
    },
    #[error("cannot read {file}: {message}")]
    Unreadable { file: String, message: String },
}

/// How a folder's files stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Every file the record lists is as recorded.
    Files(usize),
    /// There is no record to check against.
    Unrecorded,
}

/// Checks every file `<onnx>/checksums.json` lists against it.
pub fn verify(onnx: &Path) -> Result<Verified, IntegrityError> {
    let record = onnx.join(CHECKSUMS_FILE);
    let shown = record.display().to_string();
    let text = match std::fs::read_to_string(&record) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Verified::Unrecorded),
        Err(error) => return Err(IntegrityError::Record(shown, error.to_string())),
    };
    let checksums: Checksums =
        serde_json::from_str(&text).map_err(|error| IntegrityError::Record(shown.clone(), error.to_string()))?;
    for (name, recorded) in &checksums.files {
        // A record names files of its own folder only.
        if name.contains('/') || name.contains('\\') || name == ".." {
            return Err(IntegrityError::Record(
                shown,
                format!("it names {name:?}, which is not a file of its folder"),
            ));
        }
        let path = onnx.join(name);
        let file = path.display().to_string();
        let bytes = match std::fs::metadata(&path) {
            Ok(metadata) => metadata.len(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(IntegrityError::Missing { file, record: shown });
            }
            Err(error) => {
                return Err(IntegrityError::Unreadable {
                    file,
                    message: error.to_string(),
                });
            }
        };
        if bytes != recorded.bytes {
            return Err(IntegrityError::Size {
                file,
                bytes,
                recorded: recorded.bytes,
                record: shown,
            });
        }
        let sha256 = digest(&path).map_err(|error| IntegrityError::Unreadable {
            file: file.clone(),
            message: error.to_string(),
        })?;
        if !sha256.eq_ignore_ascii_case(&recorded.sha256) {
            return Err(IntegrityError::Digest {
                file,
                sha256,
                recorded: recorded.sha256.clone(),
                record: shown,
            });
        }
    }
    Ok(Verified::Files(checksums.files.len()))
}

/// [`verify`], saying in the logs how model `name`'s files stood: checked, or loaded
/// unchecked for want of a record.
pub fn check(name: &str, onnx: &Path) -> Result<(), IntegrityError> {
    match verify(onnx)? {
        Verified::Files(count) => tracing::debug!(model = name, files = count, "files as recorded"),
        Verified::Unrecorded => tracing::warn!(
            model = name,
            "no {CHECKSUMS_FILE} in {}: its files are loaded unchecked",
            onnx.display()
        ),
    }
    Ok(())
}

/// `path`'s SHA-256, lower-case hex.
fn digest(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with(files: &[(&str, &[u8])], record: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        std::fs::write(dir.path().join(CHECKSUMS_FILE), record).unwrap();
        dir
    }

    /// SHA-256 of "abc" (FIPS 180-2's example).
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn files_as_recorded_pass_and_every_change_is_refused_by_name() {
        let record = format!(r#"{{"files": {{"model.onnx": {{"bytes": 3, "sha256": "{ABC}"}}}}}}"#);
        let good = folder_with(&[("model.onnx", b"abc")], &record);
        assert_eq!(verify(good.path()).unwrap(), Verified::Files(1));

        let cut = folder_with(&[("model.onnx", b"ab")], &record);
        let error = verify(cut.path()).unwrap_err().to_string();
        assert!(
            error.contains("model.onnx is 2 bytes") && error.contains("records 3"),
            "{error}"
        );

        let flipped = folder_with(&[("model.onnx", b"abd")], &record);
        let error = verify(flipped.path()).unwrap_err().to_string();
        assert!(
            error.contains("model.onnx's SHA-256") && error.contains("corrupted"),
            "{error}"
        );

        let missing = folder_with(&[], &record);
        let error = verify(missing.path()).unwrap_err().to_string();
        assert!(error.contains("model.onnx is missing"), "{error}");

        let broken = folder_with(&[("model.onnx", b"abc")], "{\"files\": 3");
        let error = verify(broken.path()).unwrap_err().to_string();
        assert!(error.contains("checksums.json cannot be read"), "{error}");

        let outside = folder_with(&[], r#"{"files": {"../secret": {"bytes": 1, "sha256": "00"}}}"#);
        let error = verify(outside.path()).unwrap_err().to_string();
        assert!(error.contains("not a file of its folder"), "{error}");
    }

    #[test]
    fn a_folder_without_a_record_is_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(verify(dir.path()).unwrap(), Verified::Unrecorded);
    }
}
