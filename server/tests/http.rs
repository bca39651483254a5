//! The server over real HTTP on 127.0.0.1, with the exported model: answers equal the
//! `transformers` pipeline's own JSON, and every bad request gets a 4xx JSON error.
//!
//! Needs the exported model and `ORT_DYLIB_PATH`, which `cargo xtask test` provides.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use modelcrate_core::BatchingOptions;
use modelcrate_core::pipeline;
use modelcrate_runtime::variants::{read_serving, read_variants};
use modelcrate_runtime::{Layout, MergeLimits, MergeStep, VariantChoice};
use serde_json::{Value, json};

const SCORE_BOUND: f64 = 1e-4;

fn reference() -> Value {
    reference_of("news-topic")
}

/// Starts the server with the FP32 export, whose answers must equal the pipeline's.
async fn start() -> String {
    start_with(VariantChoice::Named("fp32".into())).await
}

/// Starts the server on a free loopback port; returns its base URL.
async fn start_with(variant: VariantChoice) -> String {
    start_serving(&[], variant, BatchingOptions::default(), REQUEST_TIMEOUT).await
}

/// Max |score difference| of two pipeline answers; panics on any other difference.
fn compare(rust: &Value, python: &Value, place: &str) -> f64 {
    pipeline::difference(rust, python, place).unwrap_or_else(|problem| panic!("{problem}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_answers_like_the_transformers_pipeline_for_every_golden_input() {
    let base = start().await;
    answers_like_the_reference(&base, "news-topic").await;
}

/// SetFit's answers in the pipeline's shapes: the body and head sessions in sequence, the
/// default scores SetFit's `predict_proba`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setfit_model_answers_like_setfit_for_every_golden_input() {
    let base = start_serving(
        &["news-topic-fewshot"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    answers_like_the_reference(&base, "news-topic-fewshot").await;
    let reference = reference_of("news-topic-fewshot");
    let case = &reference["cases"][0];
    let (status, answer) = post(
        &base,
        "/models/news-topic-fewshot/predict",
        &json!({"inputs": case["text"], "parameters": {"top_k": null}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let labels = reference["labels"].as_array().unwrap();
    for entry in answer.as_array().unwrap() {
        let id = labels.iter().position(|label| *label == entry["label"]).unwrap();
        let expected = case["probabilities"][id].as_f64().unwrap();
        assert!(
            (entry["score"].as_f64().unwrap() - expected).abs() <= SCORE_BOUND,
            "{entry}"
        );
    }
}

/// Every recorded parameter set, for each golden input alone and all of them as a batch,
/// against `golden/<model>/reference.json`.
async fn answers_like_the_reference(base: &str, model: &str) {
    let path = format!("/models/{model}/predict");
    let reference = reference_of(model);
    let calls = reference["pipeline_calls"].as_object().unwrap();
    let cases = reference["cases"].as_array().unwrap();
    let mut max_difference = 0.0f64;
    for (key, parameters) in calls {
        for case in cases {
            let body = json!({"inputs": case["text"], "parameters": parameters});
            let (status, answer) = post(base, &path, &body).await;
            assert_eq!(status, 200, "{}: {answer}", case["id"]);
            max_difference = max_difference.max(compare(
                &answer,
                &case["pipeline"][key],
                &format!("{} {key}", case["id"]),
            ));
        }
        let texts: Vec<&Value> = cases.iter().map(|case| &case["text"]).collect();
        let (status, answer) = post(base, &path, &json!({"inputs": texts, "parameters": parameters})).await;
        assert_eq!(status, 200, "batch: {answer}");
        max_difference = max_difference.max(compare(
            &answer,
            &reference["batch"]["pipeline"][key],
            &format!("batch {key}"),
        ));
    }
    assert!(
        max_difference <= SCORE_BOUND,
        "{model}: max score difference {max_difference}"
    );
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn vector(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("an embedding is an array")
        .iter()
        .map(|v| v.as_f64().expect("of numbers"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_answer_like_sentence_transformers_in_the_inference_api_shape() {
    let base = start().await;
    let reference = reference_of("news-embed");
    let cases = reference["cases"].as_array().unwrap();
    // One text: one vector.
    for case in cases {
        let (status, answer) = post(&base, "/models/news-embed/predict", &json!({"inputs": case["text"]})).await;
        assert_eq!(status, 200, "{}: {answer}", case["id"]);
        let (rust, python) = (vector(&answer), vector(&case["embedding"]));
        assert_eq!(rust.len(), 384);
        assert!(cosine(&rust, &python) >= 0.99999, "{}", case["id"]);
    }
    // A list: a list of vectors, in order.
    let texts: Vec<&Value> = cases.iter().map(|case| &case["text"]).collect();
    let (status, answer) = post(&base, "/models/news-embed/predict", &json!({"inputs": texts})).await;
    assert_eq!(status, 200);
    let rows = answer.as_array().unwrap();
    assert_eq!(rows.len(), cases.len());
    for (case, row) in cases.iter().zip(rows) {
        assert!(
            cosine(&vector(row), &vector(&case["embedding"])) >= 0.99999,
            "batch {}",
            case["id"]
        );
    }
    // normalize: false gives the pooled vector before L2 normalisation.
    let body = json!({"inputs": "Shares rose sharply", "parameters": {"normalize": false}});
    let (status, answer) = post(&base, "/models/news-embed/predict", &body).await;
    assert_eq!(status, 200);
    let norm = vector(&answer).iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "norm {norm}");
    // Classification parameters mean nothing to an embedding model.
    let body = json!({"inputs": "a", "parameters": {"top_k": 1}});
    let (status, answer) = post(&base, "/models/news-embed/predict", &body).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"].as_str().unwrap().contains("parameters.top_k"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_question_is_answered_with_the_sports_topic() {
    let base = start().await;
    let body = json!({"inputs": "Arsenal beat Chelsea 2-1 in the league on Saturday"});
    let (status, answer) = post(&base, "/models/news-topic/predict", &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer[0]["label"], "sports", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_answer() {
    let base = start().await;
    let reference = reference();
    let cases: Vec<Value> = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .take(32)
        .cloned()
        .collect();
    let requests = cases.iter().map(|case| {
        let base = base.clone();
        let body = json!({"inputs": case["text"], "parameters": {"top_k": null}});
        async move { post(&base, "/models/news-topic/predict", &body).await }
    });
    let answers = futures_join_all(requests).await;
    for (case, (status, answer)) in cases.iter().zip(answers) {
        assert_eq!(status, 200);
        assert!(compare(&answer, &case["pipeline"]["top_k_none"], case["id"].as_str().unwrap()) <= SCORE_BOUND);
    }
}

/// Runs futures concurrently on the runtime (no extra dependency for one join).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_are_batched_and_answer_as_if_alone() {
    // A generous queue delay makes merging certain; each answer must still be the one
    // the pipeline gives for its text alone, within the FP32 bound.
    let batching = BatchingOptions {
        max_queue_delay: Duration::from_millis(50),
        ..BatchingOptions::default()
    };
    let base = start_serving(
        &["news-topic"],
        VariantChoice::Named("fp32".into()),
        batching,
        REQUEST_TIMEOUT,
    )
    .await;
    let reference = reference();
    let cases: Vec<Value> = reference["cases"].as_array().unwrap().clone();
    let requests = cases.iter().map(|case| {
        let base = base.clone();
        let body = json!({"inputs": case["text"], "parameters": {"top_k": null}});
        async move { post_with_headers(&base, "/models/news-topic/predict", &body).await }
    });
    let answers = futures_join_all(requests).await;
    let mut largest_batch = 0;
    for (case, (status, headers, answer)) in cases.iter().zip(answers) {
        assert_eq!(status, 200, "{answer}");
        let id = case["id"].as_str().unwrap();
        assert!(
            compare(&answer, &case["pipeline"]["top_k_none"], id) <= SCORE_BOUND,
            "{id}"
        );
        largest_batch = largest_batch.max(header_number(&headers, "x-batch-size"));
        let total = header_number(&headers, "x-total-time");
        assert!(total >= header_number(&headers, "x-inference-time"));
        assert!(total >= header_number(&headers, "x-tokenization-time"));
    }
    assert!(
        largest_batch > 1,
        "{} concurrent requests never shared a batch",
        cases.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn merging_by_length_answers_every_request_of_a_burst_after_a_lone_one() {
    // Short texts merge, long ones run alone. A request that does not fit the batch being
    // gathered must run next: it once waited behind a worker blocked on an empty queue
    // until its timeout, when a burst of mixed lengths followed a lone request.
    let merge = MergeLimits {
        steps: vec![
            MergeStep {
                up_to_tokens: 16,
                max_rows: 4,
            },
            MergeStep {
                up_to_tokens: 32,
                max_rows: 16,
            },
            MergeStep {
                up_to_tokens: 128,
                max_rows: 1,
            },
        ],
    };
    let batching = BatchingOptions {
        merge,
        max_queue_delay: Duration::ZERO,
        ..BatchingOptions::default()
    };
    let timeout = Duration::from_secs(10);
    let base = start_serving(&["news-topic"], VariantChoice::Named("fp32".into()), batching, timeout).await;
    let lone = json!({"inputs": "The striker scored twice."});
    assert_eq!(post(&base, "/models/news-topic/predict", &lone).await.0, 200);
    let clients = (0..32).map(|client| {
        let base = base.clone();
        async move {
            let mut statuses = Vec::new();
            for turn in 0..6 {
                // 6 to about 110 tokens: every merge step, and texts that run alone.
                let text = "The striker scored twice in the second half. ".repeat(1 + (client * 7 + turn * 5) % 12);
                let (status, _) = post(&base, "/models/news-topic/predict", &json!({"inputs": text})).await;
                statuses.push(status);
            }
            statuses
        }
    });
    let statuses = tokio::time::timeout(Duration::from_secs(120), futures_join_all(clients))
        .await
        .expect("the burst is answered");
    let answered: Vec<u16> = statuses.into_iter().flatten().collect();
    assert_eq!(answered.len(), 32 * 6);
    assert!(answered.iter().all(|&status| status == 200), "{answered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_queue_answers_429_with_retry_after_and_nothing_hangs() {
    // One worker, one waiting request, no merging: concurrent long requests overflow it.
    let batching = BatchingOptions {
        max_batch_size: 1,
        max_queue_delay: Duration::ZERO,
        queue_capacity: 1,
        ..BatchingOptions::default()
    };
    let one_session = Layout::Fixed {
        sessions: 1,
        intra_threads: 1,
    };
    let base = start_serving_laid_out(
        &["news-topic"],
        VariantChoice::Named("fp32".into()),
        one_session,
        batching,
        REQUEST_TIMEOUT,
    )
    .await;
    let long_text = "Shares rose sharply after the central bank cut interest rates. ".repeat(40);
    let requests = (0..12).map(|_| {
        let base = base.clone();
        let body = json!({"inputs": vec![long_text.clone(); 8]});
        async move { post_with_headers(&base, "/models/news-topic/predict", &body).await }
    });
    let answers = tokio::time::timeout(Duration::from_secs(120), futures_join_all(requests))
        .await
        .expect("every request is answered");
    let refused: Vec<_> = answers.iter().filter(|(status, _, _)| *status == 429).collect();
    assert!(!refused.is_empty(), "12 concurrent requests fit a queue of 1");
    for (_, headers, answer) in &refused {
        assert_eq!(headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        assert_eq!(answer["error_type"], "overloaded", "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("queue of model `news-topic` is full"),
            "{answer}"
        );
    }
    assert!(answers.iter().all(|(status, _, _)| *status == 200 || *status == 429));
    assert!(answers.iter().any(|(status, _, _)| *status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_timeout_gets_504() {
    let base = start_serving(
        &["news-topic"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        Duration::from_millis(1),
    )
    .await;
    let long_text = "The striker scored twice in the second half. ".repeat(40);
    let body = json!({"inputs": vec![long_text; 32]});
    let (status, answer) = post(&base, "/models/news-topic/predict", &body).await;
    assert_eq!(status, 504, "{answer}");
    assert_eq!(answer["error_type"], "timeout");
}

async fn futures_join_all<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_4xx_json_error_that_names_the_problem() {
    let base = start().await;
    let client = reqwest::Client::new();
    let url = format!("{base}/models/news-topic/predict");
    let too_many: Vec<String> = (0..=MAX_CLIENT_BATCH_SIZE).map(|i| format!("text {i}")).collect();
    let too_many = json!({"inputs": too_many}).to_string();
    let too_large = json!({"inputs": "word ".repeat(MAX_BODY_BYTES / 4)}).to_string();
    let table: Vec<(&str, String, &str, u16, &str)> = vec![
        (
            "malformed JSON",
            "{\"inputs\": ".into(),
            "application/json",
            400,
            "malformed JSON",
        ),
        (
            "not an object",
            "[\"text\"]".into(),
            "application/json",
            422,
            "must be a JSON object",
        ),
        (
            "no inputs",
            "{}".into(),
            "application/json",
            422,
            "missing field `inputs`",
        ),
        (
            "inputs a number",
            r#"{"inputs": 42}"#.into(),
            "application/json",
            422,
            "`inputs` must be a string or an array of strings",
        ),
        (
            "empty text",
            r#"{"inputs": ""}"#.into(),
            "application/json",
            422,
            "`inputs` is empty or only whitespace",
        ),
        (
            "whitespace text",
            r#"{"inputs": " \t\n "}"#.into(),
            "application/json",
            422,
            "`inputs` is empty or only whitespace",
        ),
        (
            "empty batch",
            r#"{"inputs": []}"#.into(),
            "application/json",
            422,
            "empty array",
        ),
        (
            "a non-string in the batch",
            r#"{"inputs": ["ok", null]}"#.into(),
            "application/json",
            422,
            "`inputs[1]` must be a string",
        ),
        (
            "a blank text in the batch",
            r#"{"inputs": ["ok", "   "]}"#.into(),
            "application/json",
            422,
            "`inputs[1]` is empty",
        ),
        ("too many inputs", too_many, "application/json", 413, "at most 80"),
        (
            "body over the limit",
            too_large,
            "application/json",
            413,
            "--max-body-bytes",
        ),
        (
            "unknown field",
            r#"{"inputs": "a", "top_k": 2}"#.into(),
            "application/json",
            422,
            "unknown field `top_k`",
        ),
        (
            "top_k zero",
            r#"{"inputs": "a", "parameters": {"top_k": 0}}"#.into(),
            "application/json",
            422,
            "`parameters.top_k`",
        ),
        (
            "top_k text",
            r#"{"inputs": "a", "parameters": {"top_k": "2"}}"#.into(),
            "application/json",
            422,
            "`parameters.top_k`",
        ),
        (
            "unknown function",
            r#"{"inputs": "a", "parameters": {"function_to_apply": "tanh"}}"#.into(),
            "application/json",
            422,
            "function_to_apply",
        ),
        (
            "wrong content type",
            r#"{"inputs": "a"}"#.into(),
            "text/plain",
            415,
            "Content-Type must be application/json",
        ),
        (
            "raw control characters",
            "{\"inputs\": \"a\u{1}b\"}".into(),
            "application/json",
            400,
            "malformed JSON",
        ),
    ];
    for (what, body, content_type, status, message) in table {
        let response = client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{what}");
        let answer: Value = response
            .json()
            .await
            .unwrap_or_else(|_| panic!("{what}: the answer is JSON"));
        let error = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {answer} has an `error` string"));
        assert!(error.contains(message), "{what}: {error:?} should contain {message:?}");
        assert!(answer["error_type"].is_string(), "{what}: {answer}");
    }
    let raw = client
        .post(&url)
        .header("content-type", "application/json")
        .body(vec![b'"', 0xff, 0xfe, b'"'])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400, "bytes that are not UTF-8");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_models_routes_and_methods_get_json_errors() {
    let base = start().await;
    let (status, answer) = post(&base, "/models/no-such-model/predict", &json!({"inputs": "a"})).await;
    assert_eq!(status, 404);
    assert_eq!(answer["error_type"], "model_not_found");
    let response = reqwest::get(format!("{base}/nowhere")).await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["error_type"], "not_found");
    let response = reqwest::get(format!("{base}/models/news-topic/predict")).await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error_type"],
        "method_not_allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_answer_like_the_token_classification_pipeline_for_every_strategy() {
    let base = start().await;
    let reference = reference_of("release-ner");
    let calls = reference["pipeline_calls"].as_object().unwrap();
    let cases = reference["cases"].as_array().unwrap();
    let mut max_difference = 0.0f64;
    for (key, parameters) in calls {
        for case in cases {
            let body = json!({"inputs": case["text"], "parameters": parameters});
            let (status, answer) = post(&base, "/models/release-ner/predict", &body).await;
            assert_eq!(status, 200, "{}: {answer}", case["id"]);
            max_difference = max_difference.max(compare(
                &answer,
                &case["pipeline"][key],
                &format!("{} {key}", case["id"]),
            ));
        }
    }
    // A list of texts: one entity list per text, in order.
    let texts: Vec<&Value> = cases.iter().map(|case| &case["text"]).collect();
    let body = json!({"inputs": texts, "parameters": calls["simple"]});
    let (status, answer) = post(&base, "/models/release-ner/predict", &body).await;
    assert_eq!(status, 200);
    max_difference = max_difference.max(compare(
        &answer,
        &reference["batch"]["pipeline"]["simple"],
        "batch simple",
    ));
    assert!(max_difference <= SCORE_BOUND, "max score difference {max_difference}");
    // Without parameters the strategy is the Inference API's default, simple.
    let (status, answer) = post(
        &base,
        "/models/release-ner/predict",
        &json!({"inputs": cases[0]["text"]}),
    )
    .await;
    assert_eq!(status, 200);
    compare(&answer, &cases[0]["pipeline"]["simple"], "default strategy");
    // Parameters of other tasks, or a strategy the pipeline lacks, are refused by name.
    for (parameters, named) in [
        (json!({"top_k": 1}), "parameters.top_k"),
        (
            json!({"aggregation_strategy": "longest"}),
            "parameters.aggregation_strategy",
        ),
        (json!({"stride": 8}), "parameters.stride"),
    ] {
        let body = json!({"inputs": "Redis 7.2 is out", "parameters": parameters});
        let (status, answer) = post(&base, "/models/release-ner/predict", &body).await;
        assert_eq!(status, 422, "{parameters}");
        assert!(answer["error"].as_str().unwrap().contains(named), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_and_health_describe_what_is_served() {
    let base = start().await;
    let health = get(&base, "/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["phase"], "ready");
    assert_eq!(get(&base, "/health/ready").await["status"], "ready");
    assert_eq!(get(&base, "/health/live").await["status"], "live");
    let models = get(&base, "/models").await;
    let by_name: BTreeMap<&str, &Value> = models
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m))
        .collect();
    let news = by_name["news-topic"];
    assert_eq!(news["task"], "text-classification");
    assert_eq!(
        news["labels"],
        json!(["business", "entertainment", "politics", "sports", "tech"])
    );
    assert_eq!(news["problem_type"], "single_label_classification");
    assert_eq!(news["dimension"], Value::Null);
    assert_eq!(news["reload"]["generation"], 1, "no reload yet");
    assert_eq!(news["reload"]["last_reload"], Value::Null);
    let embed = by_name["news-embed"];
    assert_eq!(embed["task"], "feature-extraction");
    assert_eq!(embed["dimension"], 384);
    assert_eq!(embed["labels"], json!([]));
    assert_eq!(
        embed["signature"]["outputs"],
        json!([{"name": "last_hidden_state", "dtype": "float32", "dims": [null, null, 384]}])
    );
    assert_eq!(news["signature"]["outputs"][0]["dims"], json!([null, 5]));
    assert_eq!(news["head_signature"], Value::Null);
    let fewshot = by_name["news-topic-fewshot"];
    assert_eq!(fewshot["task"], "text-classification");
    assert_eq!(fewshot["labels"], news["labels"]);
    assert_eq!(fewshot["signature"]["outputs"][0]["name"], "last_hidden_state");
    assert_eq!(
        fewshot["head_signature"]["inputs"],
        json!([{"name": "sentence_embedding", "dtype": "float32", "dims": [null, 384]}])
    );
    assert_eq!(fewshot["head_signature"]["outputs"][1]["dims"], json!([null, 5]));
    let ner = by_name["release-ner"];
    assert_eq!(ner["task"], "token-classification");
    assert_eq!(
        ner["labels"],
        json!(["O", "B-PRODUCT", "I-PRODUCT", "B-VERSION", "I-VERSION"])
    );
    assert_eq!(ner["signature"]["outputs"][0]["dims"], json!([null, null, 5]));
    let animals = by_name["animal-shapes"];
    assert_eq!(animals["task"], "image-classification");
    assert_eq!(animals["labels"][9], "zebra");
    assert_eq!(animals["image"]["crop_size"], 224);
    assert_eq!(animals["image"]["max_pixels"], MAX_IMAGE_PIXELS);
    assert_eq!(
        animals["signature"]["inputs"],
        json!([{"name": "pixel_values", "dtype": "float32", "dims": [null, 3, 224, 224]}])
    );
    assert_eq!(news["signature"]["inputs"][0]["name"], "input_ids");
    assert_eq!(news["variant"]["name"], "fp32");
    assert_eq!(news["variant"]["file"], "model.onnx");
    assert_eq!(news["variant"]["selection"], "named");
    assert_eq!(news["max_length"], 128);
    let batching = BatchingOptions::default();
    assert_eq!(news["batching"]["max_batch_size"], batching.max_batch_size);
    assert_eq!(news["batching"]["max_batch_tokens"], batching.max_batch_tokens);
    assert_eq!(news["batching"]["queue_capacity"], batching.queue_capacity);
    assert_eq!(news["request_timeout_ms"], REQUEST_TIMEOUT.as_millis() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_server_loads_the_selected_variant_and_says_why() {
    let serving = read_serving(&artifacts().join("news-topic/onnx"))
        .unwrap()
        .expect("onnx/serving.json (cargo xtask select)");
    let base = start_with(VariantChoice::Serving).await;
    let models = get(&base, "/models").await;
    let news = models
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "news-topic")
        .unwrap();
    let variant = &news["variant"];
    assert_eq!(variant["name"], serving.variant.as_str());
    assert_eq!(variant["file"], serving.file.as_str());
    let selection = variant["selection"].as_str().unwrap();
    assert!(
        selection.starts_with(&format!("selected ({})", serving.policy)) && selection.contains(&serving.reason),
        "{selection}"
    );
    // Every made variant select weighed, each with its verdict: one serves, the one named.
    let candidates = variant["candidates"].as_array().expect("variant.candidates");
    let made = read_variants(&artifacts().join("news-topic/onnx"))
        .unwrap()
        .unwrap()
        .made()
        .count();
    assert_eq!(candidates.len(), made, "{candidates:?}");
    let serving_ones: Vec<&Value> = candidates.iter().filter(|c| c["verdict"] == "serves").collect();
    assert_eq!(serving_ones.len(), 1, "{candidates:?}");
    assert_eq!(serving_ones[0]["name"], serving.variant.as_str());
    for candidate in candidates {
        assert!(
            candidate["gop_per_sequence"]["128"].as_f64().unwrap() > 0.0,
            "{candidate}"
        );
        // A variant that failed its gate was never measured, and says why it cannot serve.
        if candidate["passed"] == false {
            assert_eq!(candidate["sequences_per_second"], Value::Null, "{candidate}");
            assert!(
                candidate["verdict"].as_str().unwrap().starts_with("fails its"),
                "{candidate}"
            );
        }
    }
    // Whatever variant serves, the README's question gets the sports topic.
    let (status, answer) = post(
        &base,
        "/models/news-topic/predict",
        &json!({"inputs": "Arsenal beat Chelsea 2-1 in the league on Saturday"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["label"], "sports");
}

/// The golden images with their PyTorch answers: (case, file bytes, media type).
fn golden_images() -> Vec<(Value, Vec<u8>, &'static str)> {
    let reference = reference_of("animal-shapes");
    reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let file = case["file"].as_str().unwrap();
            let bytes = std::fs::read(workspace().join("golden/animal-shapes").join(file)).unwrap();
            let media = if file.ends_with(".jpg") {
                "image/jpeg"
            } else {
                "image/png"
            };
            (case.clone(), bytes, media)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_answer_like_pytorch_and_undecodable_ones_get_422() {
    let base = start_serving(
        &["animal-shapes"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    let (mut compared, mut refused, mut too_large) = (0, 0, 0);
    for (case, bytes, media) in golden_images() {
        let id = case["id"].as_str().unwrap().to_string();
        let (status, answer) = post_bytes(&base, "/models/animal-shapes/predict", media, bytes.clone()).await;
        if case.get("error").is_some() {
            assert_eq!(status, 422, "{id}: {answer}");
            assert_eq!(answer["error_type"], "validation", "{id}");
            assert!(answer["error"].as_str().unwrap().contains("PNG"), "{id}: {answer}");
            refused += 1;
            continue;
        }
        let pixels = case["width"].as_u64().unwrap() * case["height"].as_u64().unwrap();
        if pixels > MAX_IMAGE_PIXELS {
            assert_eq!(status, 413, "{id}: {answer}");
            assert!(
                answer["error"].as_str().unwrap().contains("--max-image-pixels"),
                "{id}: {answer}"
            );
            too_large += 1;
            continue;
        }
        assert_eq!(status, 200, "{id}: {answer}");
        assert_eq!(
            answer.as_array().unwrap().len(),
            5,
            "{id}: the pipeline's default top 5"
        );
        if media == "image/png" {
            // PIL's very pixels: the whole answer equals PyTorch's within the FP32 bound.
            assert!(compare(&answer, &case["pipeline"], &id) <= SCORE_BOUND, "{id}");
        } else {
            // JPEG decoders differ by a few levels (measured by the parity check).
            assert_eq!(answer[0]["label"], case["pipeline"][0]["label"], "{id}");
        }
        compared += 1;
    }
    assert!(
        compared >= 20 && refused == 2 && too_large == 1,
        "{compared} {refused} {too_large}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_arrive_raw_in_a_form_or_as_base64_with_the_same_answer() {
    use base64::Engine as _;
    let base = start_serving(
        &["animal-shapes"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    let url = format!("{base}/models/animal-shapes/predict");
    let images = golden_images();
    let (zebra, cat) = (
        &images.iter().find(|i| i.0["id"] == "zebra-28").unwrap().1,
        &images.iter().find(|i| i.0["id"] == "cat-progressive").unwrap().1,
    );
    let (status, raw) = post_bytes(
        &base,
        "/models/animal-shapes/predict?top_k=2",
        "image/png",
        zebra.clone(),
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(raw.as_array().unwrap().len(), 2);
    assert_eq!(raw[0]["label"], "zebra");

    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(zebra.clone())
                .file_name("zebra.png")
                .mime_str("image/png")
                .unwrap(),
        )
        .text("top_k", "2");
    let response = reqwest::Client::new().post(&url).multipart(form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let from_form: Value = response.json().await.unwrap();
    assert_eq!(from_form, raw, "a form upload answers as the raw bytes do");

    let encoded = base64::engine::general_purpose::STANDARD.encode(zebra);
    let body = json!({"inputs": format!("data:image/png;base64,{encoded}"), "parameters": {"top_k": 2}});
    let (status, from_json) = post(&base, "/models/animal-shapes/predict", &body).await;
    assert_eq!(
        (status, &from_json),
        (200, &raw),
        "base64 JSON answers as the raw bytes do"
    );

    // Two images in one form, and a list in JSON: one ranked list per image, in order.
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(zebra.clone()).file_name("a.png"),
        )
        .part("image", reqwest::multipart::Part::bytes(cat.clone()).file_name("b.jpg"));
    let response = reqwest::Client::new().post(&url).multipart(form).send().await.unwrap();
    let both: Value = response.json().await.unwrap();
    assert_eq!(both.as_array().unwrap().len(), 2, "{both}");
    assert_eq!(
        (both[0][0]["label"].as_str(), both[1][0]["label"].as_str()),
        (Some("zebra"), Some("cat"))
    );
    let list = json!({"inputs": [encoded], "parameters": {"top_k": null}});
    let (_, listed) = post(&base, "/models/animal-shapes/predict", &list).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0].as_array().unwrap().len(), 10, "top_k null: every label");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn texts_sent_to_images_and_images_sent_to_texts_are_named() {
    let base = start_serving(
        &["animal-shapes", "news-topic"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    let png = golden_images().into_iter().find(|i| i.0["id"] == "cat-28").unwrap().1;
    let (status, answer) = post(
        &base,
        "/models/animal-shapes/predict",
        &json!({"inputs": "a photo of a cat"}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("an image model takes no text"),
        "{answer}"
    );
    let (status, answer) = post_bytes(&base, "/models/animal-shapes/predict", "text/plain", b"a cat".to_vec()).await;
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = post_bytes(&base, "/models/news-topic/predict", "image/png", png.clone()).await;
    assert_eq!(status, 415, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("it takes texts as application/json, not images"),
        "{answer}"
    );
    let (status, answer) = post_bytes(&base, "/models/animal-shapes/predict", "image/png", Vec::new()).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("the body is empty"),
        "{answer}"
    );
    let (status, answer) = post_bytes(&base, "/models/animal-shapes/predict?top_k=0", "image/png", png).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("`parameters.top_k`"),
        "{answer}"
    );
}

/// The real binary: ready only after its warm-up; on SIGTERM it answers every request in
/// flight, refuses new ones with 503 (readiness too), then exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_in_flight_and_refuses_new_ones_with_503() {
    use std::process::Command;

    // A batch wait of 1.5 s keeps the first requests in flight while the signal arrives
    // (merging on: a worker waits for more only while its batch may grow).
    let artifacts = artifacts();
    let mut server = Binary::start(&[
        "--model",
        "news-topic",
        "--variant",
        "fp32",
        "--merge",
        "on",
        "--max-queue-delay-ms",
        "1500",
        "--drain-timeout-ms",
        "20000",
        "--artifacts",
        artifacts.to_str().unwrap(),
    ])
    .await;
    let base = server.base.clone();

    let url = format!("{base}/models/news-topic/predict");
    let in_flight: Vec<_> = (0..3)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let body = json!({"inputs": [format!("Arsenal won the league, match {i}"), "Shares fell sharply"]});
                let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
                (response.status().as_u16(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::time::sleep(Duration::from_millis(200)).await;

    // While the three wait for their batch: new work is refused, and readiness says so.
    let client = reqwest::Client::new();
    let refused = client
        .post(&url)
        .json(&json!({"inputs": "One more"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("shutting down"), "{body}");
    let readiness = client.get(format!("{base}/health/ready")).send().await.unwrap();
    assert_eq!(readiness.status().as_u16(), 503);

    for request in in_flight {
        let (status, answer) = request.await.unwrap();
        assert_eq!(status, 200, "a request in flight is answered: {answer}");
        assert_eq!(answer.as_array().map(Vec::len), Some(2), "{answer}");
    }
    let exited = tokio::task::spawn_blocking(move || {
        for _ in 0..200 {
            if let Some(status) = server.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Still running: dropping `server` kills it.
        None
    })
    .await
    .unwrap();
    assert!(
        exited.is_some_and(|status| status.success()),
        "the server exits 0 after draining: {exited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_status_and_time_each_answer() {
    let base = start_serving(
        &["news-topic"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    for text in ["Arsenal beat Chelsea", "Shares fell sharply"] {
        let (status, _) = post(&base, "/models/news-topic/predict", &json!({"inputs": text})).await;
        assert_eq!(status, 200);
    }
    let (status, _) = post(&base, "/models/news-topic/predict", &json!({"inputs": ""})).await;
    assert_eq!(status, 422);
    let (status, _) = post(&base, "/models/no-such-model/predict", &json!({"inputs": "a"})).await;
    assert_eq!(status, 404);
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    for line in [
        "modelcrate_requests_total{model=\"news-topic\",route=\"/models/{name}/predict\",status=\"200\",error_type=\"\"} 2",
        "modelcrate_requests_total{model=\"news-topic\",route=\"/models/{name}/predict\",status=\"422\",error_type=\"validation\"} 1",
        "modelcrate_requests_total{model=\"_unknown\",route=\"/models/{name}/predict\",status=\"404\",error_type=\"model_not_found\"} 1",
        "modelcrate_request_duration_seconds_count{model=\"news-topic\"} 2",
        "modelcrate_inference_duration_seconds_count{model=\"news-topic\"} 2",
        "modelcrate_tokenization_duration_seconds_count{model=\"news-topic\"} 2",
        "modelcrate_batch_size_bucket{model=\"news-topic\",le=\"+Inf\"} 2",
        "modelcrate_queue_waiting{model=\"news-topic\"} 0",
        "modelcrate_model_info{model=\"news-topic\",task=\"text-classification\",variant=\"fp32\",kind=\"fp32\"} 1",
        "modelcrate_phase{phase=\"ready\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
}

/// Little-endian float32s from OpenAI's base64 encoding.
fn decode_base64_floats(text: &str) -> Vec<f32> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text).expect("base64");
    bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_embeddings_equal_sentence_transformers_in_every_encoding() {
    let base = start().await;
    let reference = reference_of("news-embed");
    let cases = &reference["cases"].as_array().unwrap()[..6];
    let texts: Vec<&Value> = cases.iter().map(|case| &case["text"]).collect();
    let body = json!({"model": "news-embed", "input": texts, "encoding_format": "float", "user": "tests"});
    let (status, floats) = post(&base, "/v1/embeddings", &body).await;
    assert_eq!(status, 200, "{floats}");
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "news-embed");
    let tokens: usize = cases
        .iter()
        .map(|case| case["input_ids"].as_array().unwrap().len())
        .sum();
    assert_eq!(floats["usage"]["prompt_tokens"], tokens);
    assert_eq!(floats["usage"]["total_tokens"], tokens);
    let data = floats["data"].as_array().unwrap();
    assert_eq!(data.len(), cases.len());
    for (index, (item, case)) in data.iter().zip(cases).enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], index);
        assert!(
            cosine(&vector(&item["embedding"]), &vector(&case["embedding"])) >= 0.99999,
            "{}",
            case["id"]
        );
    }
    // base64: the same float32s, bit for bit (JSON carries each as its shortest decimal).
    let (status, encoded) = post(
        &base,
        "/v1/embeddings",
        &json!({"model": "news-embed", "input": texts, "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(status, 200, "{encoded}");
    for (item, float_item) in encoded["data"].as_array().unwrap().iter().zip(data) {
        let decoded = decode_base64_floats(item["embedding"].as_str().unwrap());
        let floats: Vec<f32> = vector(&float_item["embedding"]).into_iter().map(|v| v as f32).collect();
        assert_eq!(decoded, floats);
    }
    // dimensions: the first n values, unit length again.
    let (status, short) = post(
        &base,
        "/v1/embeddings",
        &json!({"model": "news-embed", "input": texts[0], "dimensions": 64}),
    )
    .await;
    assert_eq!(status, 200, "{short}");
    let kept = vector(&short["data"][0]["embedding"]);
    assert_eq!(kept.len(), 64);
    let full = vector(&data[0]["embedding"]);
    let norm = full[..64].iter().map(|x| x * x).sum::<f64>().sqrt();
    for (got, value) in kept.iter().zip(&full[..64]) {
        assert!((got - value / norm).abs() < 1e-6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_refusals_have_openai_error_shape() {
    let base = start().await;
    let cases = [
        (
            json!({"model": "news-topic", "input": "a text"}),
            422,
            "feature-extraction",
            Value::Null,
        ),
        (
            json!({"model": "nope", "input": "a text"}),
            404,
            "no model named `nope`",
            Value::Null,
        ),
        (
            json!({"model": "news-embed", "input": [101, 2023]}),
            422,
            "token ids",
            json!("input"),
        ),
        (
            json!({"model": "news-embed", "input": ""}),
            422,
            "empty",
            json!("input"),
        ),
        (
            json!({"model": "news-embed", "input": "a", "dimensions": 1000}),
            422,
            "more than the 384",
            json!("dimensions"),
        ),
        (
            json!({"model": "news-embed", "input": "a", "encoding_format": "int8"}),
            422,
            "encoding_format",
            json!("encoding_format"),
        ),
        (json!({"input": "a"}), 422, "missing field `model`", json!("model")),
        (
            json!({"model": "news-embed", "input": "a", "stream": true}),
            422,
            "unknown field `stream`",
            Value::Null,
        ),
    ];
    for (body, status, says, param) in cases {
        let (got, answer) = post(&base, "/v1/embeddings", &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        let error = &answer["error"];
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
        assert!(error["type"].is_string() && error["code"].is_string(), "{answer}");
        if !param.is_null() {
            assert_eq!(error["param"], param, "{body}: {answer}");
        }
    }
    // A text past the model's 128 tokens: refused unless the server truncates.
    let long = "word ".repeat(400);
    let (status, answer) = post(&base, "/v1/embeddings", &json!({"model": "news-embed", "input": long})).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains("128 tokens"),
        "{answer}"
    );
    let models = get(&base, "/v1/models").await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"news-embed") && ids.contains(&"news-topic"), "{models}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_routes_answer_in_tei_shapes_with_a_model_selector() {
    let base = start().await;
    let embed = reference_of("news-embed");
    let case = &embed["cases"][0];
    // /embed: always a list of vectors; the only embedding model needs no name.
    let (status, answer) = post(&base, "/embed", &json!({"inputs": case["text"]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().unwrap().len(), 1);
    assert!(cosine(&vector(&answer[0]), &vector(&case["embedding"])) >= 0.99999);
    let (status, answer) = post(
        &base,
        "/embed",
        &json!({"inputs": [case["text"], "Second"], "model": "news-embed", "normalize": false}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().unwrap().len(), 2);
    let norm = vector(&answer[0]).iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() > 1e-3, "normalize false: norm {norm}");

    // /predict: several classifiers are served, so one must be named.
    let topics = reference();
    let topic = &topics["cases"][0];
    let (status, answer) = post(&base, "/predict", &json!({"inputs": topic["text"]})).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("missing field `model`"),
        "{answer}"
    );
    let (status, answer) = post(
        &base,
        "/predict",
        &json!({"inputs": topic["text"], "model": "news-topic"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    compare(
        &answer,
        &topic["pipeline"]["top_k_none"],
        "TEI predict: every label, best first",
    );
    let batch =
        json!({"inputs": [[topic["text"]], [topics["cases"][1]["text"]]], "model": "news-topic", "raw_scores": true});
    let (status, answer) = post(&base, "/predict", &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().unwrap().len(), 2);
    compare(&answer[0], &topic["pipeline"]["none_all"], "TEI predict raw_scores");
    let (status, answer) = post(
        &base,
        "/predict",
        &json!({"inputs": ["a question", "a passage"], "model": "news-topic"}),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("pair of texts"), "{answer}");
    let (status, answer) = post(&base, "/predict", &json!({"inputs": "a text", "model": "news-embed"})).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("feature-extraction model"),
        "{answer}"
    );

    // Truncation is TEI's: refused by default, cut where asked.
    let long = format!("{} ", topic["text"].as_str().unwrap()).repeat(40);
    let (status, answer) = post(&base, "/predict", &json!({"inputs": long, "model": "news-topic"})).await;
    assert_eq!(status, 413, "{answer}");
    let (status, cut) = post(
        &base,
        "/predict",
        &json!({"inputs": long, "model": "news-topic", "truncate": true}),
    )
    .await;
    assert_eq!(status, 200, "{cut}");
    let (_, pipeline) = post(
        &base,
        "/models/news-topic/predict",
        &json!({"inputs": long, "parameters": {"top_k": null}}),
    )
    .await;
    compare(&cut, &pipeline, "truncated TEI predict = the pipeline's truncation");

    // /tokenize: the model's ids, byte offsets into the text.
    let accents = topics["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["id"] == "accents-01")
        .unwrap();
    let (status, answer) = post(
        &base,
        "/tokenize",
        &json!({"inputs": accents["text"], "model": "news-topic"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let tokens = answer[0].as_array().unwrap();
    let ids: Vec<u64> = tokens.iter().map(|t| t["id"].as_u64().unwrap()).collect();
    let expected: Vec<u64> = accents["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(ids, expected);
    assert_eq!(tokens[0]["special"], true);
    assert_eq!(tokens[0]["start"], Value::Null);
    let text = accents["text"].as_str().unwrap();
    for token in tokens.iter().filter(|t| t["special"] == false) {
        let (start, stop) = (
            token["start"].as_u64().unwrap() as usize,
            token["stop"].as_u64().unwrap() as usize,
        );
        assert_eq!(token["text"].as_str().unwrap(), &text[start..stop]);
    }
    let (status, answer) = post(
        &base,
        "/tokenize",
        &json!({"inputs": "a text", "model": "animal-shapes"}),
    )
    .await;
    assert_eq!(status, 422, "an image model has no tokenizer: {answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("takes images, not texts"),
        "{answer}"
    );
    let (_, bare) = post(
        &base,
        "/tokenize",
        &json!({"inputs": accents["text"], "model": "news-topic", "add_special_tokens": false}),
    )
    .await;
    assert_eq!(bare[0].as_array().unwrap().len(), tokens.len() - 2);

    // /info: one model's TEI description, or the server's limits and models.
    let info = get(&base, "/info?model=news-topic").await;
    assert_eq!(info["model_id"], "news-topic");
    assert_eq!(info["model_type"]["classifier"]["id2label"]["3"], "sports");
    assert_eq!(info["max_input_length"], 128);
    assert_eq!(info["max_client_batch_size"], MAX_CLIENT_BATCH_SIZE);
    let info = get(&base, "/info?model=news-embed").await;
    assert_eq!(info["model_type"]["embedding"]["pooling"], "mean");
    let all = get(&base, "/info").await;
    assert!(all["models"].as_array().unwrap().len() >= 8, "{all}");
    assert_eq!(all["auto_truncate"], false);
    let response = reqwest::get(format!("{base}/info?model=nope")).await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

async fn post_status(base: &str, path: &str, body: &Value, status: u16, says: &str) {
    let (got, answer) = post(base, path, body).await;
    assert_eq!(got, status, "{body}: {answer}");
    let message = answer["error"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{body}: {message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_v2_metadata_and_infer_from_text_or_token_tensors() {
    let base = start().await;
    assert_eq!(get(&base, "/v2").await["name"], "modelcrate");
    assert_eq!(get(&base, "/v2/health/live").await["live"], true);
    assert_eq!(get(&base, "/v2/health/ready").await["ready"], true);
    assert_eq!(get(&base, "/v2/models/news-topic/ready").await["ready"], true);
    let meta = get(&base, "/v2/models/news-topic").await;
    assert_eq!(meta["platform"], "onnxruntime_onnx");
    assert_eq!(
        meta["inputs"][0],
        json!({"name": "text", "datatype": "BYTES", "shape": [-1]})
    );
    assert_eq!(
        meta["inputs"][1],
        json!({"name": "input_ids", "datatype": "INT64", "shape": [-1, -1]})
    );
    assert_eq!(
        meta["outputs"][0],
        json!({"name": "logits", "datatype": "FP32", "shape": [-1, 5]})
    );
    let embed_meta = get(&base, "/v2/models/news-embed").await;
    assert_eq!(embed_meta["outputs"][0]["shape"], json!([-1, 384]));
    let image_meta = get(&base, "/v2/models/animal-shapes").await;
    assert_eq!(
        image_meta["inputs"],
        json!([{"name": "pixel_values", "datatype": "FP32", "shape": [-1, 3, 224, 224]}])
    );

    // Text in: logits equal PyTorch's, the label the pipeline's.
    let reference = reference();
    let cases = &reference["cases"].as_array().unwrap()[..4];
    let texts: Vec<&Value> = cases.iter().map(|case| &case["text"]).collect();
    let body = json!({"id": "r-1", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [4], "data": texts}]});
    let (status, answer) = post(&base, "/v2/models/news-topic/infer", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], "r-1");
    assert_eq!(answer["model_name"], "news-topic");
    let outputs = answer["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["name"], "logits");
    assert_eq!(outputs[0]["shape"], json!([4, 5]));
    let logits = vector(&outputs[0]["data"]);
    for (row, case) in cases.iter().enumerate() {
        for (got, want) in logits[row * 5..row * 5 + 5].iter().zip(vector(&case["logits"])) {
            assert!((got - want).abs() <= SCORE_BOUND, "{}: {got} vs {want}", case["id"]);
        }
        assert_eq!(outputs[2]["data"][row], case["pipeline"]["default"][0]["label"]);
    }

    // Token tensors in, right-padded and nested: the same logits.
    let ids: Vec<Vec<i64>> = cases
        .iter()
        .map(|case| {
            case["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        })
        .collect();
    let longest = ids.iter().map(Vec::len).max().unwrap();
    let padded: Vec<Vec<i64>> = ids
        .iter()
        .map(|row| row.iter().copied().chain(std::iter::repeat(0)).take(longest).collect())
        .collect();
    let mask: Vec<Vec<i64>> = ids
        .iter()
        .map(|row| (0..longest).map(|i| i64::from(i < row.len())).collect())
        .collect();
    let tensors = |ids: &Value, mask: &Value| {
        json!({"inputs": [
            {"name": "input_ids", "datatype": "INT64", "shape": [4, longest], "data": ids},
            {"name": "attention_mask", "datatype": "INT64", "shape": [4, longest], "data": mask},
        ], "outputs": [{"name": "logits"}]})
    };
    let (status, answer) = post(
        &base,
        "/v2/models/news-topic/infer",
        &tensors(&json!(padded), &json!(mask)),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outputs"].as_array().unwrap().len(), 1);
    for (got, want) in vector(&answer["outputs"][0]["data"]).iter().zip(&logits) {
        assert!((got - want).abs() <= 1e-5, "{got} vs {want}");
    }

    // Embeddings from text.
    let embed = reference_of("news-embed");
    let case = &embed["cases"][0];
    let body = json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [case["text"]]}]});
    let (status, answer) = post(&base, "/v2/models/news-embed/infer", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outputs"][0]["shape"], json!([1, 384]));
    assert!(cosine(&vector(&answer["outputs"][0]["data"]), &vector(&case["embedding"])) >= 0.99999);

    // Refusals name the problem.
    let path = "/v2/models/news-topic/infer";
    let mut left_padded = mask.clone();
    left_padded[0].rotate_right(1);
    left_padded[0][0] = 0;
    post_status(
        &base,
        path,
        &tensors(&json!(padded), &json!(left_padded)),
        422,
        "ones then zeros",
    )
    .await;
    let mut outside = padded.clone();
    outside[1][1] = 40_000;
    post_status(
        &base,
        path,
        &tensors(&json!(outside), &json!(mask)),
        422,
        "outside the vocabulary",
    )
    .await;
    let text = |data: Value, shape: Value| json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": shape, "data": data}]});
    post_status(&base, path, &text(json!(["a", "b"]), json!([3])), 422, "has 2 elements").await;
    post_status(&base, path, &text(json!([" "]), json!([1])), 422, "empty").await;
    let unknown = json!({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [0.5]}]});
    post_status(&base, path, &unknown, 422, "unknown input `pixels`").await;
    let mut both = text(json!(["a"]), json!([1]));
    both["inputs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "input_ids", "datatype": "INT64", "shape": [1, 1], "data": [101]}));
    post_status(&base, path, &both, 422, "not both").await;
    let mut no_such_output = text(json!(["a text"]), json!([1]));
    no_such_output["outputs"] = json!([{"name": "probabilities"}]);
    post_status(&base, path, &no_such_output, 422, "unknown output `probabilities`").await;
    post_status(
        &base,
        "/v2/models/release-ner/infer",
        &text(json!(["a"]), json!([1])),
        422,
        "/models/release-ner/predict",
    )
    .await;
    post_status(
        &base,
        "/v2/models/nope/infer",
        &text(json!(["a"]), json!([1])),
        404,
        "no model named `nope`",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id_and_a_usable_one_is_kept() {
    let base = start().await;
    let client = reqwest::Client::new();
    let sent = client
        .post(format!("{base}/models/news-topic/predict"))
        .header("x-request-id", "trace-42")
        .json(&json!({"inputs": "Shares fell"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.headers()["x-request-id"], "trace-42");
    let first = reqwest::get(format!("{base}/nowhere")).await.unwrap();
    let second = reqwest::get(format!("{base}/health")).await.unwrap();
    let (a, b) = (&first.headers()["x-request-id"], &second.headers()["x-request-id"]);
    assert!(!a.is_empty() && a != b, "{a:?} {b:?}");
    let unusable = client
        .get(format!("{base}/health"))
        .header("x-request-id", "x".repeat(200))
        .send()
        .await
        .unwrap();
    assert_ne!(unusable.headers()["x-request-id"].len(), 200);
}

/// Whether `path` is `template` with each of its `{parameter}`s filled in.
fn fills(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(wanted, given)| wanted == given || (wanted.starts_with('{') && !given.is_empty()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_and_models_as_typed() {
    let base = start().await;
    let document = get(&base, "/openapi.json").await;
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    for required in [
        "/models/news-topic/predict",
        "/v1/embeddings",
        "/embed",
        "/predict",
        "/tokenize",
        "/v2/models/news-topic/infer",
        "/metrics",
    ] {
        assert!(paths.contains_key(required), "{required} is described");
    }
    // Every described route exists: it answers anything but "no route" or "wrong method".
    let client = reqwest::Client::new();
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => client.get(format!("{base}{path}")),
                _ => client.post(format!("{base}{path}")).json(&json!({})),
            };
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!(
                status != 405 && body["error_type"] != "not_found",
                "{method} {path}: {status} {body}"
            );
        }
    }
    // Every route the server answers is described (the spec and its viewer aside), for at
    // least one model where its path names one.
    for endpoint in modelcrate_server::routes::endpoints() {
        if endpoint.path == "/openapi.json" || endpoint.path.starts_with("/docs") {
            continue;
        }
        let method = endpoint.method.as_str().to_lowercase();
        let described = paths
            .iter()
            .any(|(path, operations)| fills(endpoint.path, path) && operations.get(&method).is_some());
        assert!(described, "{method} {} is in /openapi.json", endpoint.path);
    }
    // A model's labels, embedding length and entity types are in its schemas.
    let topic = &paths["/models/news-topic/predict"]["post"];
    let answer = &topic["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"][0];
    assert_eq!(
        answer["items"]["properties"]["label"]["enum"],
        json!(["business", "entertainment", "politics", "sports", "tech"])
    );
    let embedding = &paths["/models/news-embed/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        ["oneOf"][0];
    assert_eq!(embedding["maxItems"], 384);
    let entities = &paths["/models/release-ner/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        ["oneOf"][0];
    assert_eq!(
        entities["items"]["properties"]["entity_group"]["enum"],
        json!(["PRODUCT", "VERSION"])
    );
    assert_eq!(
        document["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
            ["model"]["enum"],
        json!(["news-embed"])
    );
    // Swagger UI, from the vendored assets.
    let page = reqwest::get(format!("{base}/docs"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/docs/swagger-ui-bundle.js") && page.contains("/openapi.json"));
    let script = reqwest::get(format!("{base}/docs/swagger-ui-bundle.js")).await.unwrap();
    assert_eq!(script.headers()["content-type"], "application/javascript");
    assert!(script.bytes().await.unwrap().len() > 1_000_000);
}
