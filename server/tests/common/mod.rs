//! What the server's integration tests share: where the artifacts and golden outputs are,
//! the server started in-process on a free loopback port or as the real binary, and small
//! HTTP helpers. Each test file uses part of it.
#![allow(dead_code)]

pub mod fake;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use modelcrate_core::engine_plan::{EngineFlags, LayoutFlag, MergeFlag};
use modelcrate_core::{BatchingOptions, Engine, catalog};
use modelcrate_runtime::{Layout, LoadOptions, MergeLimits, VariantChoice};
use modelcrate_server::lifecycle::{self, Lifecycle};
use modelcrate_server::reload::Reloader;
use modelcrate_server::served::Served;
use modelcrate_server::state::Limits;
use modelcrate_server::{AppState, CATALOG, app};
use serde_json::Value;

pub const MAX_BODY_BYTES: usize = 512 * 1024;
/// Below the golden 2400×1600 image, above every other golden image.
pub const MAX_IMAGE_PIXELS: u64 = 1_000_000;
pub const MAX_CLIENT_BATCH_SIZE: usize = 80;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn reference_of(model: &str) -> Value {
    let path = workspace().join("golden").join(model).join("reference.json");
    let text = std::fs::read_to_string(&path).expect("golden/<model>/reference.json (cargo xtask golden)");
    serde_json::from_str(&text).expect("reference.json is JSON")
}

pub fn artifacts() -> PathBuf {
    std::env::var_os("MODELCRATE_ARTIFACTS").map_or_else(|| workspace().join("artifacts"), PathBuf::from)
}

/// Starts the server in-process with `names` (all models when empty), batching and
/// timeout as given, two single-thread sessions per model, on a free loopback port;
/// returns its base URL.
pub async fn start_serving(
    names: &[&str],
    variant: VariantChoice,
    batching: BatchingOptions,
    request_timeout: Duration,
) -> String {
    let layout = Layout::Fixed {
        sessions: 2,
        intra_threads: 1,
    };
    start_serving_laid_out(names, variant, layout, batching, request_timeout).await
}

/// [`start_serving`] with the sessions laid out as `layout`.
pub async fn start_serving_laid_out(
    names: &[&str],
    variant: VariantChoice,
    layout: Layout,
    batching: BatchingOptions,
    request_timeout: Duration,
) -> String {
    let options = LoadOptions {
        variant,
        layout,
        ..LoadOptions::default()
    };
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let load = options.clone();
    let engine_batching = batching.clone();
    let engines = tokio::task::spawn_blocking(move || -> anyhow::Result<BTreeMap<String, Arc<Engine>>> {
        CATALOG
            .names(&names)?
            .into_iter()
            .map(|name| {
                let model = catalog::load(CATALOG.entry(&name)?, &artifacts(), &load)?;
                Ok((name, Arc::new(Engine::start(model, engine_batching.clone()))))
            })
            .collect()
    })
    .await
    .unwrap()
    .expect("the exported models load (run `cargo xtask export`; set ORT_DYLIB_PATH)");
    serve_with(engines, options, layout, batching, request_timeout, app).await
}

/// The fake models of [`fake`], one engine each, served in-process as [`start_serving`]
/// serves the real ones; returns the base URL.
pub async fn start_fakes() -> String {
    start_fakes_for(&[]).await
}

/// [`start_fakes`], answering browsers from `cors_origins` (`--cors-allow-origin`).
pub async fn start_fakes_for(cors_origins: &[&str]) -> String {
    let batching = BatchingOptions::default();
    let layout = Layout::Fixed {
        sessions: 1,
        intra_threads: 1,
    };
    let options = LoadOptions {
        layout,
        ..LoadOptions::default()
    };
    let router = |state| {
        let origins: Vec<String> = cors_origins.iter().map(|origin| origin.to_string()).collect();
        modelcrate_server::routes::with_cors(app(state), &origins).expect("the origins are valid")
    };
    serve_with(
        fake::engines(&batching),
        options,
        layout,
        batching,
        fake::TIMEOUT,
        router,
    )
    .await
}

/// Warms `engines` up and serves them on a free loopback port, ready, through the router
/// `router` makes of the state; returns the base URL.
async fn serve_with(
    engines: BTreeMap<String, Arc<Engine>>,
    options: LoadOptions,
    layout: Layout,
    batching: BatchingOptions,
    request_timeout: Duration,
    router: impl FnOnce(AppState) -> axum::Router,
) -> String {
    let served = Arc::new(Served::new(engines, &[], BTreeMap::new()));
    let warm_up_timeout = request_timeout.max(Duration::from_secs(60));
    // The server's own warm-up, then ready: as `modelcrate-server` starts.
    let warming = Arc::clone(&served);
    tokio::task::spawn_blocking(move || lifecycle::warm_up(&warming, warm_up_timeout))
        .await
        .unwrap()
        .expect("every model warms up");
    let lifecycle = Arc::new(Lifecycle::default());
    lifecycle.set_ready();
    let state = AppState {
        models: served,
        reloader: Arc::new(Reloader {
            artifacts: artifacts(),
            golden: workspace().join("golden"),
            engines: flags_of(layout, &batching),
            load: options,
            warm_up_timeout,
            admin_token: None,
        }),
        lifecycle,
        metrics: Arc::default(),
        limits: Limits {
            max_client_batch_size: MAX_CLIENT_BATCH_SIZE,
            max_body_bytes: MAX_BODY_BYTES,
            max_image_pixels: MAX_IMAGE_PIXELS,
            request_timeout,
            auto_truncate: false,
        },
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = router(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}")
}

/// The real `modelcrate-server` binary, killed when dropped.
pub struct Binary {
    pub child: Child,
    pub base: String,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    /// Starts `modelcrate-server` on a free port with `args` and waits until it is ready.
    pub async fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_modelcrate-server"))
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("modelcrate-server starts");
        // Its logs go to stdout too: find the line that says where it listens, and keep
        // reading so that the pipe never fills.
        let stdout = child.stdout.take().unwrap();
        let (found, listening) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("serving ") {
                    let _ = found.send(line);
                }
            }
        });
        let line = tokio::task::spawn_blocking(move || listening.recv_timeout(Duration::from_secs(120)))
            .await
            .unwrap()
            .expect("the server prints where it listens");
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .expect("`serving [...] on http://…`")
            .to_string();
        let binary = Self { child, base };
        let mut ready = false;
        for _ in 0..600 {
            if let Ok(response) = reqwest::get(format!("{}/health/ready", binary.base)).await
                && response.status() == 200
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "/health/ready turns 200 after the warm-up");
        binary
    }
}

pub async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let (status, _, answer) = post_with_headers(base, path, body).await;
    (status, answer)
}

pub async fn post_with_headers(base: &str, path: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.expect("every answer is JSON"))
}

pub async fn post_bytes(base: &str, path: &str, media: &str, bytes: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", media)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.expect("every answer is JSON"))
}

pub fn header_number(headers: &reqwest::header::HeaderMap, name: &str) -> u64 {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("header {name} is a number"))
}

/// A GET's status and JSON answer, whatever the status.
pub async fn get_status(base: &str, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.expect("every answer is JSON"))
}

pub async fn get(base: &str, path: &str) -> Value {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "GET {path}");
    response.json().await.expect("every answer is JSON")
}

/// The flags that make a reload start engines as `start_serving_laid_out` did: the same
/// fixed layout, merging up to the batch limits.
fn flags_of(layout: Layout, batching: &BatchingOptions) -> EngineFlags {
    let (sessions, intra_threads) = match layout {
        Layout::Fixed {
            sessions,
            intra_threads,
        } => (Some(sessions), Some(intra_threads)),
        Layout::Adaptive { .. } => (None, None),
    };
    EngineFlags {
        layout: LayoutFlag::Adaptive,
        sessions,
        intra_threads,
        merge: if batching.merge == MergeLimits::never() {
            MergeFlag::Off
        } else {
            MergeFlag::On
        },
        max_batch_size: batching.max_batch_size,
        max_batch_tokens: batching.max_batch_tokens,
        max_queue_delay: batching.max_queue_delay,
        queue_capacity: batching.queue_capacity,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}
