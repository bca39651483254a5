//! Hot reload of the real binary over HTTP on 127.0.0.1: a model swaps in only after its
//! canary (the parity gate against PyTorch's golden outputs) passes, requests under load
//! are all answered across the swap, and a bad artifact is refused while the old model
//! serves on. Each test serves the image model (its canary takes seconds) from a scratch
//! copy of its folder, made of links to the real files so that a test can change one.
//!
//! Needs the exported models and `ORT_DYLIB_PATH`, which `cargo xtask test` provides.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use modelcrate_schema::{Policy, Serving, VariantKind};
use serde_json::{Value, json};

const MODEL: &str = "animal-shapes";
const PREDICT: &str = "/models/animal-shapes/predict";
const RELOAD: &str = "/admin/models/animal-shapes/reload";
/// The admin token the servers of these tests start with.
const TOKEN: &str = "s3cret-token";

/// A scratch artifacts folder holding links to one model's real files but its record of
/// checksums; `serving.json` is a copy, so a test can pick another variant. Removed when
/// dropped.
struct Scratch {
    root: PathBuf,
    source: PathBuf,
}

impl Scratch {
    fn new(test: &str) -> Self {
        let root = std::env::temp_dir().join(format!("modelcrate-reload-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let source = artifacts().join(MODEL);
        let model = root.join(MODEL);
        std::fs::create_dir_all(model.join("onnx")).unwrap();
        for entry in std::fs::read_dir(&source).expect("the exported model (cargo xtask export)") {
            let entry = entry.unwrap();
            if entry.file_name() != "onnx" {
                std::os::unix::fs::symlink(entry.path(), model.join(entry.file_name())).unwrap();
            }
        }
        for entry in std::fs::read_dir(source.join("onnx")).unwrap() {
            let entry = entry.unwrap();
            let to = model.join("onnx").join(entry.file_name());
            // These tests change files by hand, as no `select` would leave them: the folder
            // carries no record of checksums (`integrity`), so it loads unchecked and the
            // canary is what holds each reload. The record's refusals are chaos's cases.
            if entry.file_name() == "checksums.json" {
                continue;
            }
            if entry.file_name() == "serving.json" {
                std::fs::copy(entry.path(), &to).unwrap();
            } else {
                std::os::unix::fs::symlink(entry.path(), &to).unwrap();
            }
        }
        let scratch = Self { root, source };
        // Each test starts from FP32, whatever variant the pipeline last selected.
        scratch.select("fp32", "model.onnx", VariantKind::Fp32);
        scratch
    }

    fn onnx(&self) -> PathBuf {
        self.root.join(MODEL).join("onnx")
    }

    /// Serves `variant` (`file`, `kind`) from now on, written as `cargo xtask select` does.
    fn select(&self, variant: &str, file: &str, kind: VariantKind) {
        let serving = Serving {
            model: MODEL.into(),
            policy: Policy::Named,
            variant: variant.into(),
            file: file.into(),
            kind,
            reason: "chosen by the test".into(),
            engine: None,
            candidates: Vec::new(),
        };
        let written = self.onnx().join("serving.json.tmp");
        std::fs::write(&written, serde_json::to_string_pretty(&serving).unwrap()).unwrap();
        std::fs::rename(&written, self.onnx().join("serving.json")).unwrap();
    }

    /// Makes `file` of the scratch folder the real folder's `real` (or the bytes given).
    fn replace(&self, file: &str, with: Replacement<'_>) {
        let path = self.onnx().join(file);
        std::fs::remove_file(&path).unwrap();
        match with {
            Replacement::Link(real) => std::os::unix::fs::symlink(self.source.join("onnx").join(real), &path).unwrap(),
            Replacement::Bytes(bytes) => std::fs::write(&path, bytes).unwrap(),
        }
    }

    async fn serve(&self, extra: &[&str]) -> Binary {
        let golden = workspace().join("golden");
        let mut args = vec![
            "--model",
            MODEL,
            "--artifacts",
            self.root.to_str().unwrap(),
            "--golden",
            golden.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        Binary::start(&args).await
    }
}

enum Replacement<'a> {
    Link(&'a str),
    Bytes(&'a [u8]),
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn image(name: &str) -> Vec<u8> {
    std::fs::read(workspace().join("golden").join(MODEL).join("images").join(name)).unwrap()
}

async fn predict(base: &str, bytes: &[u8]) -> (u16, Value) {
    post_bytes(base, PREDICT, "image/png", bytes.to_vec()).await
}

/// This model's `/models` entry.
async fn described(base: &str) -> Value {
    let models = get(base, "/models").await;
    models
        .as_array()
        .unwrap()
        .iter()
        .find(|model| model["name"] == MODEL)
        .cloned()
        .unwrap()
}

async fn reload(base: &str, token: Option<&str>) -> (u16, Value) {
    reload_at(base, RELOAD, token).await
}

async fn reload_at(base: &str, route: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{base}{route}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.expect("every answer is JSON"))
}

async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Polls `/models` until `done` holds for this model's entry, for at most two minutes.
async fn wait_for(base: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let model = described(base).await;
        if done(&model) {
            return model;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{what}: {model}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_swaps_after_its_canary_and_fails_no_request() {
    let scratch = Scratch::new("under-load");
    let server = scratch
        .serve(&["--watch-interval-ms", "0", "--admin-token", TOKEN])
        .await;
    let base = server.base.clone();
    let cat = image("cat-28.png");
    let (status, before) = predict(&base, &cat).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(described(&base).await["variant"]["name"], "fp32");
    // An image's decoding and resizing is timed under its own name.
    let response = reqwest::Client::new()
        .post(format!("{base}{PREDICT}"))
        .header("content-type", "image/png")
        .body(cat.clone())
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("x-preparation-time"));
    assert!(!response.headers().contains_key("x-tokenization-time"));

    // Four clients send images without pause until the swap is well over.
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (base, stop, cat) = (base.clone(), Arc::clone(&stop), cat.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let (status, answer) = predict(&base, &cat).await;
                    answers.push((sent, Instant::now(), status, answer));
                }
                answers
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    scratch.select("O1", "model.O1.onnx", VariantKind::Fp32);
    let reload_sent = Instant::now();
    let (status, swapped) = reload(&base, Some(TOKEN)).await;
    assert_eq!(status, 200, "{swapped}");
    let swapped_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    assert_eq!(swapped["outcome"], "swapped");
    assert_eq!(swapped["generation"], 2);
    assert_eq!(swapped["variant"], "O1");
    let canary = swapped["canary"].as_array().unwrap();
    assert!(
        canary
            .iter()
            .any(|row| row["check"].as_str().unwrap().contains("test split accuracy")),
        "the canary ran the whole gate: {swapped}"
    );
    for stage in ["load", "canary", "warm_up"] {
        assert!(swapped["seconds"][stage].as_f64().unwrap() > 0.0, "{stage}: {swapped}");
    }
    let (mut during, mut after) = (0, 0);
    for client in clients {
        for (sent, done, status, answer) in client.await.unwrap() {
            assert_eq!(status, 200, "a request during the swap failed: {answer}");
            assert_eq!(answer[0]["label"], before[0]["label"], "{answer}");
            during += usize::from(sent > reload_sent && done < swapped_at);
            after += usize::from(sent > swapped_at);
        }
    }
    // The old model kept answering while the new one loaded and ran its canary, and the
    // new one answered after the swap.
    assert!(during >= 20, "{during} requests answered during the reload");
    assert!(after >= 4, "{after} requests answered after the swap");

    let model = described(&base).await;
    assert_eq!(model["variant"]["name"], "O1", "{model}");
    assert_eq!(model["reload"]["generation"], 2);
    assert_eq!(model["reload"]["last_reload"]["outcome"], "swapped");
    assert_eq!(model["reload"]["last_reload"]["trigger"], "admin");
    let (status, after) = predict(&base, &cat).await;
    assert_eq!(status, 200);
    let (a, b) = (
        before[0]["score"].as_f64().unwrap(),
        after[0]["score"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-4, "O1 answers as fp32 did: {a} vs {b}");
    let text = metrics(&base).await;
    assert!(
        text.contains(
            "modelcrate_model_reloads_total{model=\"animal-shapes\",trigger=\"admin\",outcome=\"swapped\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("modelcrate_model_generation{model=\"animal-shapes\"} 2"));
    assert!(
        text.contains("modelcrate_model_info{model=\"animal-shapes\",task=\"image-classification\",variant=\"O1\"")
    );
    assert!(text.contains("modelcrate_model_reload_stage_seconds{model=\"animal-shapes\",stage=\"canary\"}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_artifact_is_refused_and_the_old_model_serves_on() {
    let scratch = Scratch::new("bad-artifact");
    let server = scratch
        .serve(&["--watch-interval-ms", "0", "--admin-token", TOKEN])
        .await;
    let base = server.base.clone();
    let cat = image("cat-28.png");
    let (_, before) = predict(&base, &cat).await;

    // Quantized weights under the FP32 file's name: the same signature, so it loads; the
    // canary holds it to the FP32 bounds and refuses it.
    scratch.replace("model.onnx", Replacement::Link("model.int8.onnx"));
    let (status, refused) = reload(&base, Some(TOKEN)).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error_type"], "reload_refused");
    assert_eq!(refused["stage"], "canary");
    assert_eq!(refused["generation"], 1);
    let failures = refused["failures"].as_array().unwrap();
    assert!(
        failures
            .iter()
            .any(|f| f.as_str().unwrap().contains("max |logit diff|")),
        "the canary names the failed bound: {refused}"
    );
    assert!(refused["error"].as_str().unwrap().contains("serves on"), "{refused}");

    // Not an ONNX file at all: refused at load, naming the file.
    scratch.replace("model.onnx", Replacement::Bytes(b"not a model"));
    let (status, refused) = reload(&base, Some(TOKEN)).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["stage"], "load");
    assert!(refused["error"].as_str().unwrap().contains("model.onnx"), "{refused}");

    // The first model serves on, answering as before.
    let (status, after) = predict(&base, &cat).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after, before);
    let model = described(&base).await;
    assert_eq!(model["variant"]["name"], "fp32");
    assert_eq!(model["reload"]["generation"], 1);
    let last = &model["reload"]["last_reload"];
    assert_eq!(last["outcome"], "refused", "{model}");
    assert!(last["error"].as_str().unwrap().starts_with("load: "), "{last}");
    let text = metrics(&base).await;
    assert!(
        text.contains(
            "modelcrate_model_reloads_total{model=\"animal-shapes\",trigger=\"admin\",outcome=\"refused\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains("modelcrate_model_reload_refused{model=\"animal-shapes\"} 1"));
    assert!(text.contains("modelcrate_model_generation{model=\"animal-shapes\"} 1"));

    // Unknown models are named.
    let (status, answer) = reload_at(&base, "/admin/models/no-such-model/reload", Some(TOKEN)).await;
    assert_eq!(status, 404, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_route_is_off_without_a_token() {
    let scratch = Scratch::new("no-token");
    let server = scratch.serve(&["--watch-interval-ms", "0"]).await;
    let base = server.base.clone();
    scratch.select("O1", "model.O1.onnx", VariantKind::Fp32);
    for token in [None, Some(TOKEN)] {
        let (status, answer) = reload(&base, token).await;
        assert_eq!(status, 403, "{answer}");
        assert_eq!(answer["error_type"], "forbidden");
        assert!(answer["error"].as_str().unwrap().contains("--admin-token"), "{answer}");
    }
    let model = described(&base).await;
    assert_eq!(model["variant"]["name"], "fp32", "nothing reloaded: {model}");
    assert_eq!(model["reload"]["generation"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_swaps_changed_files_in_and_refuses_a_variant_that_misses_its_gate() {
    let scratch = Scratch::new("watch");
    let server = scratch
        .serve(&["--watch-interval-ms", "100", "--admin-token", TOKEN])
        .await;
    let base = server.base.clone();

    // The admin route wants the token.
    let (status, answer) = reload(&base, None).await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["error_type"], "unauthorized");
    let (status, _) = reload(&base, Some("guess")).await;
    assert_eq!(status, 401);

    // Another variant selected: the watcher sees it and swaps it in behind the canary.
    scratch.select("O1", "model.O1.onnx", VariantKind::Fp32);
    let model = wait_for(&base, "the watcher swaps O1 in", |m| m["reload"]["generation"] == 2).await;
    assert_eq!(model["variant"]["name"], "O1");
    assert_eq!(model["reload"]["last_reload"]["trigger"], "watch");

    // The INT8 variant loses 2.25 points of test accuracy on this model: past its gate.
    scratch.select("int8", "model.int8.onnx", VariantKind::Int8);
    let model = wait_for(&base, "the watcher refuses int8", |m| {
        m["reload"]["last_reload"]["outcome"] == "refused"
    })
    .await;
    let last = &model["reload"]["last_reload"];
    assert_eq!(last["trigger"], "watch");
    assert_eq!(last["variant"], "int8");
    assert!(
        last["failures"][0].as_str().unwrap().contains("test split accuracy"),
        "{last}"
    );
    assert_eq!(model["variant"]["name"], "O1", "O1 serves on");
    assert_eq!(model["reload"]["generation"], 2);
    // Refused files are not retried until they change again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        metrics(&base).await.contains(
            "modelcrate_model_reloads_total{model=\"animal-shapes\",trigger=\"watch\",outcome=\"refused\"} 1"
        )
    );
    let (status, answer) = predict(&base, &image("cat-28.png")).await;
    assert_eq!(status, 200, "{answer}");

    // With the token, the admin route reloads (the same refused files: refused again).
    let (status, answer) = reload(&base, Some(TOKEN)).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["stage"], "canary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_still_coming_answers_503_until_its_serving_json_appears_then_serves_behind_its_canary() {
    let scratch = Scratch::new("coming");
    // The image model's pipeline has not reached `select` yet; news-topic's is done.
    std::fs::remove_file(scratch.onnx().join("serving.json")).unwrap();
    std::os::unix::fs::symlink(artifacts().join("news-topic"), scratch.root.join("news-topic")).unwrap();
    let server = scratch
        .serve(&[
            "--model",
            "news-topic",
            "--wait-for-models",
            "--watch-interval-ms",
            "100",
        ])
        .await;
    let base = server.base.clone();

    let ready = get(&base, "/health/ready").await;
    assert_eq!(ready["models"], 1, "{ready}");
    assert_eq!(ready["coming"], json!([MODEL]), "{ready}");
    let model = described(&base).await;
    assert_eq!(model["state"], "coming", "{model}");
    assert_eq!(model["task"], "image-classification");
    assert_eq!(model["reload"]["generation"], 0);
    let (status, answer) = predict(&base, &image("cat-28.png")).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error_type"], "unavailable");
    assert!(answer["error"].as_str().unwrap().contains("still coming"), "{answer}");
    let (status, answer) = post(&base, "/models/news-topic/predict", &json!({"inputs": "Arsenal won"})).await;
    assert_eq!(status, 200, "the finished model serves meanwhile: {answer}");

    // Files changing without a `serving.json` (the pipeline still at work): nothing loads.
    scratch.replace("model.O1.onnx", Replacement::Link("model.onnx"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let model = described(&base).await;
    assert_eq!(model["state"], "coming", "{model}");
    assert_eq!(
        model["reload"]["last_reload"],
        Value::Null,
        "no load was tried: {model}"
    );

    // `select` writes `serving.json`: the watcher loads the model behind its canary.
    scratch.select("fp32", "model.onnx", VariantKind::Fp32);
    let model = wait_for(&base, "the coming model loads", |m| m["state"] == "serving").await;
    assert_eq!(model["reload"]["generation"], 1);
    assert_eq!(model["reload"]["last_reload"]["outcome"], "swapped");
    assert_eq!(model["reload"]["last_reload"]["trigger"], "watch");
    assert!(model["reload"]["last_reload"]["seconds"]["canary"].as_f64().unwrap() > 0.0);
    assert_eq!(model["variant"]["name"], "fp32");
    let (status, answer) = predict(&base, &image("cat-28.png")).await;
    assert_eq!(status, 200, "{answer}");
    let ready = get(&base, "/health/ready").await;
    assert_eq!(ready["models"], 2, "{ready}");
    assert_eq!(ready["coming"], json!([]), "{ready}");
}
