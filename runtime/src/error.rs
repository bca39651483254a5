//! The runtime's typed errors. Binaries add context (which model, which file).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "ONNX Runtime library not found{}: run `cargo xtask setup` (it installs the onnxruntime==1.31.1 wheel, \
         which carries libonnxruntime.so.1.31.1) and pass its path with --ort-dylib or ORT_DYLIB_PATH",
        .0.as_ref().map(|p| format!(" at {}", p.display())).unwrap_or_default()
    )]
    OrtLibraryMissing(Option<PathBuf>),

    #[error("cannot load ONNX Runtime from {path}: {message}")]
    OrtLibraryLoad { path: PathBuf, message: String },

    #[error("ONNX Runtime: {0}")]
    Ort(String),

    #[error("cannot read {path}: {message}")]
    Artifact { path: PathBuf, message: String },

    #[error("{path} does not match the signature this crate was generated from: {mismatch}")]
    SignatureMismatch { path: PathBuf, mismatch: String },

    #[error("variant: {0}")]
    Variant(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    #[error("{0}")]
    Input(String),

    #[error("image: {0}")]
    Image(#[from] crate::image::ImageError),

    #[error("the model returned an output of unexpected shape: {0}")]
    OutputShape(String),
}

impl<T> From<ort::Error<T>> for Error {
    fn from(error: ort::Error<T>) -> Self {
        Error::Ort(error.to_string())
    }
}
