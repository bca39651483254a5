//! Reading the JSON files the pipeline wrote into a model's folder, and writing the
//! reports the checks add to it, typed by `modelcrate_schema`, with errors that name the
//! file.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The file at `path`; an error naming it when it is missing or malformed.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|error| Error::Artifact {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    parse(path, &text)
}

/// The file at `path`, `None` when it does not exist (a step that has not run yet).
pub fn read_optional<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Error::Artifact {
            path: path.to_path_buf(),
            message: error.to_string(),
        }),
    }
}

/// Writes `value` to `path` as pretty JSON, creating its folder.
pub fn write(path: &Path, value: &impl Serialize) -> Result<()> {
    let failed = |message: String| Error::Artifact {
        path: path.to_path_buf(),
        message,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| failed(format!("cannot create its folder: {error}")))?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|error| failed(error.to_string()))? + "\n";
    std::fs::write(path, text).map_err(|error| failed(format!("cannot write: {error}")))
}

fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|error| Error::Artifact {
        path: path.to_path_buf(),
        message: format!("malformed: {error}"),
    })
}
