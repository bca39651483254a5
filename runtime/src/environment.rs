//! The one ONNX Runtime environment of the process.
//!
//! ONNX Runtime allows one environment per process and `ort` loads the shared library
//! once, so the first caller's library path wins and later callers share it.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::error::{Error, Result};

/// The variable that names `libonnxruntime.so.1.31.1` when no path is given.
pub const DYLIB_ENV: &str = "ORT_DYLIB_PATH";

static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Where to load ONNX Runtime from: the given path, else `ORT_DYLIB_PATH`.
pub fn resolve_dylib(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => match std::env::var_os(DYLIB_ENV) {
            Some(value) if !value.is_empty() => PathBuf::from(value),
            _ => return Err(Error::OrtLibraryMissing(None)),
        },
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::OrtLibraryMissing(Some(path)))
    }
}

/// The process's environment, created on first use from `dylib` (or `ORT_DYLIB_PATH`).
pub fn environment(dylib: Option<&Path>) -> Result<&'static Environment> {
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    let path = resolve_dylib(dylib)?;
    let builder = ort::init_from(&path).map_err(|error| Error::OrtLibraryLoad {
        path: path.clone(),
        message: error.to_string(),
    })?;
    let environment = builder.with_name("modelcrate").build()?;
    Ok(ENVIRONMENT.get_or_init(|| environment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_library_says_how_to_get_it() {
        let message = resolve_dylib(Some(Path::new("/nonexistent/libonnxruntime.so.1.31.1")))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("at /nonexistent/libonnxruntime.so.1.31.1"),
            "{message}"
        );
        assert!(message.contains("cargo xtask setup"), "{message}");
        assert!(message.contains("ORT_DYLIB_PATH"), "{message}");
    }
}
