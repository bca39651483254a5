//! Every knob of the server: a flag, an environment variable, and a default.

use std::path::PathBuf;

use clap::Parser;
use modelcrate_runtime::{LoadOptions, VariantChoice};

#[derive(Debug, Clone, Parser)]
#[command(name = "modelcrate-server", about = "Serves Modelcrate's generated models over HTTP")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "MODELCRATE_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, env = "MODELCRATE_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Folder with one sub-folder per model (`<name>/onnx/` as `cargo xtask export` writes it).
    #[arg(long, env = "MODELCRATE_ARTIFACTS", default_value = "artifacts")]
    pub artifacts: PathBuf,
    /// ONNX Runtime shared library (libonnxruntime.so.1.31.1); `cargo xtask setup` prints it.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_dylib: Option<PathBuf>,
    /// Serve only these models (repeatable); every generated model when absent.
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Variant of each model to serve: `serving` loads the one `cargo xtask select` chose
    /// (onnx/serving.json; FP32 when there is none), otherwise a name from onnx/variants.json
    /// (`fp32`, `O1`, `O2`, `int8`, `O2-int8`, …) or an ONNX file name.
    #[arg(long, env = "MODELCRATE_VARIANT", default_value = "serving")]
    pub variant: String,
    /// ONNX Runtime sessions per model: how many requests run inference at once.
    #[arg(long, env = "MODELCRATE_SESSIONS", default_value_t = 2)]
    pub sessions: usize,
    /// Intra-op threads per session (sessions × threads ≤ cores is the sane budget).
    #[arg(long, env = "MODELCRATE_INTRA_THREADS", default_value_t = 1)]
    pub intra_threads: usize,
    /// Largest batch given to one session run; larger requests are split.
    #[arg(long, env = "MODELCRATE_MAX_BATCH_SIZE", default_value_t = 32)]
    pub max_batch_size: usize,
    /// Most inputs one request may carry.
    #[arg(long, env = "MODELCRATE_MAX_CLIENT_BATCH_SIZE", default_value_t = 64)]
    pub max_client_batch_size: usize,
    /// Largest request body, in bytes.
    #[arg(long, env = "MODELCRATE_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024)]
    pub max_body_bytes: usize,
}

impl Config {
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            ort_dylib: self.ort_dylib.clone(),
            variant: VariantChoice::parse(&self.variant),
            sessions: self.sessions,
            intra_threads: self.intra_threads,
            max_batch_size: self.max_batch_size,
        }
    }
}
