//! Every knob of the server: a flag, an environment variable, and a default.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use modelcrate_runtime::{BatchingOptions, LoadOptions, VariantChoice};

use crate::routes::Limits;

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
    /// Inference workers per model, each with its own ONNX Runtime session: how many
    /// batches of one model run at once. With batching, one session using every core
    /// answered single requests ~1.7× faster than two one-thread sessions here, at the
    /// same throughput under load (README, "Benchmark against the peers").
    #[arg(long, env = "MODELCRATE_SESSIONS", default_value_t = 1)]
    pub sessions: usize,
    /// Intra-op threads per session; by default the machine's cores shared out among the
    /// sessions (sessions × threads ≤ cores is the sane budget).
    #[arg(long, env = "MODELCRATE_INTRA_THREADS")]
    pub intra_threads: Option<usize>,
    /// Most texts in one session run: concurrent requests are merged up to it, a larger
    /// request is split.
    #[arg(long, env = "MODELCRATE_MAX_BATCH_SIZE", default_value_t = 32)]
    pub max_batch_size: usize,
    /// Most padded tokens (texts × longest text) in one session run.
    #[arg(long, env = "MODELCRATE_MAX_BATCH_TOKENS", default_value_t = 32 * 128)]
    pub max_batch_tokens: usize,
    /// How long a worker waits for more requests to fill a batch, in milliseconds. 0
    /// takes what queued while the last batch ran, which under load is a full batch; a
    /// wait only adds latency when requests are few (measured: 2 ms cost 15 % of
    /// single-request throughput and gained nothing at concurrency 8 and 32).
    #[arg(long, env = "MODELCRATE_MAX_QUEUE_DELAY_MS", default_value_t = 0)]
    pub max_queue_delay_ms: u64,
    /// Requests that may wait per model; beyond it requests get 429 with Retry-After.
    #[arg(long, env = "MODELCRATE_QUEUE_CAPACITY", default_value_t = 256)]
    pub queue_capacity: usize,
    /// How long a request may wait for its answer, in milliseconds; then 504.
    #[arg(long, env = "MODELCRATE_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Most inputs one request may carry.
    #[arg(long, env = "MODELCRATE_MAX_CLIENT_BATCH_SIZE", default_value_t = 64)]
    pub max_client_batch_size: usize,
    /// Largest request body, in bytes (an image upload is one body: a phone photo is 2–6 MB).
    #[arg(long, env = "MODELCRATE_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest image accepted, in pixels (width × height), checked from its header before it
    /// is decoded; larger images get 413.
    #[arg(long, env = "MODELCRATE_MAX_IMAGE_PIXELS", default_value_t = modelcrate_runtime::image::DEFAULT_MAX_PIXELS)]
    pub max_image_pixels: u64,
    /// On SIGTERM or SIGINT, how long requests in flight may take to finish, in
    /// milliseconds; new ones get 503 meanwhile. Then the server exits regardless.
    #[arg(long, env = "MODELCRATE_DRAIN_TIMEOUT_MS", default_value_t = 30_000)]
    pub drain_timeout_ms: u64,
}

impl Config {
    pub fn batching(&self) -> BatchingOptions {
        BatchingOptions {
            max_batch_size: self.max_batch_size,
            max_batch_tokens: self.max_batch_tokens,
            max_queue_delay: Duration::from_millis(self.max_queue_delay_ms),
            queue_capacity: self.queue_capacity,
            workers: self.sessions,
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_client_batch_size: self.max_client_batch_size,
            max_body_bytes: self.max_body_bytes,
            max_image_pixels: self.max_image_pixels,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
        }
    }

    /// Intra-op threads per session: as given, or the cores shared out among the sessions.
    pub fn intra_threads(&self) -> usize {
        self.intra_threads.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores / self.sessions.max(1)).max(1)
        })
    }

    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            ort_dylib: self.ort_dylib.clone(),
            variant: VariantChoice::parse(&self.variant),
            sessions: self.sessions,
            intra_threads: self.intra_threads(),
            max_batch_size: self.max_batch_size,
        }
    }
}
