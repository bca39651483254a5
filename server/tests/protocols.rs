//! Every protocol's shapes, statuses and refusals against the fake models of
//! `common/fake.rs`: the router, each protocol's parsing, the inference core and the
//! batching engine run as they serve, with arithmetic in place of ONNX Runtime. Seconds,
//! and no trained artifacts. What the answers equal in PyTorch is `http.rs`'s job.

mod common;

use common::fake::{
    ANSWERER, CLASSIFIER, CRASH, DETECTOR, DIMENSION, EMBEDDER, IMAGES, MAX_LENGTH, PAIRS, PAIRS_SCALE, TAGGER,
};
use common::{get, post, post_bytes, start_fakes, start_fakes_for};
use serde_json::{Value, json};

/// softmax([0, 2])[1]: two counted words for one label, none for the other.
const TWO_TO_NONE: f64 = 0.880_797_1;

fn close(got: &Value, want: f64) -> bool {
    got.as_f64().is_some_and(|got| (got - want).abs() < 1e-5)
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("{value} is an array"))
        .iter()
        .map(|v| v.as_f64().unwrap_or(f64::NAN))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inference_api_answers_in_each_pipelines_shape() {
    let base = start_fakes().await;
    let predict = |model: &str| format!("/models/{model}/predict");

    // Text classification: the top label alone, every label with top_k null, a list per text.
    let (status, answer) = post(&base, &predict(CLASSIFIER), &json!({"inputs": "Rust is fast and good"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().map(Vec::len), Some(1), "{answer}");
    assert_eq!(answer[0]["label"], "positive");
    assert!(close(&answer[0]["score"], TWO_TO_NONE), "{answer}");
    let body = json!({"inputs": "slow and bad", "parameters": {"top_k": null}});
    let (_, answer) = post(&base, &predict(CLASSIFIER), &body).await;
    let labels: Vec<&Value> = answer.as_array().unwrap().iter().map(|a| &a["label"]).collect();
    assert_eq!(labels, [&json!("negative"), &json!("positive")], "{answer}");
    // A list: each text's top label, in a flat list (as the pipeline answers without top_k).
    let body = json!({"inputs": ["good", "bad"], "parameters": {"function_to_apply": "none"}});
    let (_, answer) = post(&base, &predict(CLASSIFIER), &body).await;
    assert_eq!(
        answer,
        json!([{"label": "positive", "score": 1.0}, {"label": "negative", "score": 1.0}])
    );

    // Feature extraction: one vector for one text, normalised as the model is.
    let (status, answer) = post(&base, &predict(EMBEDDER), &json!({"inputs": "good good"})).await;
    assert_eq!(status, 200, "{answer}");
    // [CLS] good good [SEP]: 4 tokens, 2 good, 0 bad, and the constant 1.
    let norm = 21f64.sqrt();
    let want = [4.0 / norm, 2.0 / norm, 0.0, 1.0 / norm];
    let got = floats(&answer);
    assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "{answer}");
    let body = json!({"inputs": ["bad"], "parameters": {"normalize": false}});
    let (_, answer) = post(&base, &predict(EMBEDDER), &body).await;
    assert_eq!(floats(&answer[0]), [3.0, 0.0, 1.0, 1.0]);

    // Token classification: entities with character offsets, per strategy.
    let text = "I like Rust and Python";
    let (status, answer) = post(&base, &predict(TAGGER), &json!({"inputs": text})).await;
    assert_eq!(status, 200, "{answer}");
    let groups: Vec<(&str, &str, u64, u64)> = answer
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field = |name: &str| e[name].as_str().unwrap_or_default();
            (
                field("entity_group"),
                field("word"),
                e["start"].as_u64().unwrap_or(0),
                e["end"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [("LANG", "rust", 7, 11), ("LANG", "python", 16, 22)],
        "{answer}"
    );
    // softmax([0, 4, 0])[1]
    assert!(close(&answer[0]["score"], 0.964_663), "{answer}");
    let body = json!({"inputs": [text], "parameters": {"aggregation_strategy": "none", "ignore_labels": []}});
    let (_, answer) = post(&base, &predict(TAGGER), &body).await;
    let tokens = answer[0].as_array().unwrap();
    assert_eq!(tokens.len(), 5, "one per word, [CLS] and [SEP] left out: {answer}");
    assert_eq!(
        (&tokens[2]["entity"], &tokens[2]["index"]),
        (&json!("B-LANG"), &json!(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_are_answered_in_the_pipelines_shape_and_refused_by_field() {
    let base = start_fakes().await;
    let route = format!("/models/{ANSWERER}/predict");
    // The answer is the context's first language, in characters of the context.
    let context = "the release of rust is fast and python is slow";
    let one = json!({"inputs": {"question": "which version", "context": context}});
    let (status, answer) = post(&base, &route, &one).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["answer"], "rust", "{answer}");
    assert_eq!((answer["start"].as_u64(), answer["end"].as_u64()), (Some(15), Some(19)));
    assert!(answer["score"].as_f64().is_some_and(|score| score > 0.5), "{answer}");
    // top_k: the best answers in order; with no answer allowed it is one of them.
    let body = json!({"inputs": {"question": "which", "context": context}, "parameters": {"top_k": 3, "handle_impossible_answer": true}});
    let (status, ranked) = post(&base, &route, &body).await;
    assert_eq!(status, 200, "{ranked}");
    let ranked = ranked.as_array().unwrap_or_else(|| panic!("{ranked} is a list"));
    assert_eq!(ranked.len(), 3);
    assert_eq!(ranked[0]["answer"], "rust");
    assert!(
        ranked
            .windows(2)
            .all(|pair| pair[0]["score"].as_f64() >= pair[1]["score"].as_f64())
    );
    // A list: one answer per question; a list of one is answered as one question.
    let two = json!({"inputs": [{"question": "which", "context": context}, {"question": "which", "context": "python and rust"}]});
    let (status, both) = post(&base, &route, &two).await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(
        (both[0]["answer"].as_str(), both[1]["answer"].as_str()),
        (Some("rust"), Some("python"))
    );
    let (_, single) = post(
        &base,
        &route,
        &json!({"inputs": [{"question": "which", "context": context}]}),
    )
    .await;
    assert_eq!(single["answer"], "rust", "{single}");
    // A context longer than a window: the answer is found in a later window.
    let long = format!("{} rust", "the release is good and fast ".repeat(4));
    let (status, far) = post(
        &base,
        &route,
        &json!({"inputs": {"question": "which", "context": long}}),
    )
    .await;
    assert_eq!(status, 200, "{far}");
    assert_eq!(far["answer"], "rust", "{far}");
    assert_eq!(far["start"].as_u64(), Some(long.chars().count() as u64 - 4));

    for (body, field) in [
        (
            json!({"inputs": {"context": context}}),
            "missing field `inputs.question`",
        ),
        (
            json!({"inputs": {"question": "which", "context": ""}}),
            "`inputs.context` is empty",
        ),
        (
            json!({"inputs": "which language is fast"}),
            "`inputs` must be an object",
        ),
        (
            json!({"inputs": {"question": "which version is good", "context": context}, "parameters": {"max_question_len": 2}}),
            "`question` is 4 tokens, more than `max_question_len` (2)",
        ),
        (
            json!({"inputs": [{"question": "which", "context": "rust is fast"}, {"question": "which", "context": long}], "parameters": {"doc_stride": 9}}),
            "`inputs[1]`: `doc_stride` (9) must be less than",
        ),
        (
            json!({"inputs": {"question": "which", "context": context}, "parameters": {"max_seq_len": 99}}),
            "`max_seq_len` is 99, more than the model's 12 positions",
        ),
    ] {
        let (status, refusal) = post(&base, &route, &body).await;
        assert_eq!(status, 422, "{body}: {refusal}");
        assert!(
            refusal["error"].as_str().is_some_and(|error| error.contains(field)),
            "{body}: {refusal}"
        );
    }
    // Texts for a classifier are not questions, and questions are not texts.
    let (status, refusal) = post(&base, &format!("/models/{CLASSIFIER}/predict"), &one).await;
    assert_eq!(status, 422, "{refusal}");
    let metadata = get(&base, &format!("/v2/models/{ANSWERER}")).await;
    assert_eq!(metadata["parameters"]["task"], "question-answering");
    assert_eq!(metadata["outputs"][0]["name"], "start_logits", "{metadata}");
    assert!(
        metadata["inputs"]
            .as_array()
            .is_some_and(|inputs| inputs.iter().all(|i| i["name"] != "text"))
    );
    let info = get(&base, &format!("/info?model={ANSWERER}")).await;
    assert!(info["model_type"].get("question_answering").is_some(), "{info}");
}

fn png(shade: u8) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(16, 12, image::Rgb([shade; 3]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("a PNG is written to memory");
    bytes.into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_classified_raw_and_texts_sent_to_them_are_named() {
    let base = start_fakes().await;
    let path = format!("/models/{IMAGES}/predict");
    // White: every normalised pixel is 1, so the logits are [-1, 1].
    let (status, answer) = post_bytes(&base, &path, "image/png", png(255)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["label"], "light");
    assert!(close(&answer[0]["score"], TWO_TO_NONE), "{answer}");
    let (_, answer) = post_bytes(&base, &path, "image/png", png(0)).await;
    assert_eq!(answer[0]["label"], "dark", "{answer}");
    let (status, answer) = post_bytes(&base, &path, "image/png", b"not a png".to_vec()).await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = post(&base, &path, &json!({"inputs": "a text"})).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("an image model takes no text"),
        "{answer}"
    );
    let (status, answer) = post_bytes(&base, &format!("/models/{CLASSIFIER}/predict"), "image/png", png(9)).await;
    assert_eq!(status, 415, "{answer}");
    assert!(
        answer["error"].as_str().unwrap_or_default().contains("not images"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_found_in_the_pipelines_shape_with_its_threshold() {
    let base = start_fakes().await;
    let path = format!("/models/{DETECTOR}/predict");
    // A white 16×12 image on the fake's 32×32 input: scale 2, 32×24 placed 4 rows down,
    // gray 114 above and below. The bottom-right cell's box, (8, 8)–(40, 40) on the input,
    // is (4, 2)–(20, 18) in the image, clipped to (16, 12). Its class logit is 4 × the
    // input's mean (white normalises to 1, the padding below 0), centerness sure.
    let padding = (114.0 / 255.0 - 0.5) / 0.5;
    let mean: f64 = (24.0 * 32.0 + 8.0 * 32.0 * padding) / 1024.0;
    let score = (1.0 / (1.0 + (-4.0 * mean).exp())).sqrt();
    let (status, answer) = post_bytes(&base, &path, "image/png", png(255)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().map(Vec::len), Some(1), "{answer}");
    assert_eq!(answer[0]["label"], "light");
    assert_eq!(
        answer[0]["box"],
        json!({"xmin": 4, "ymin": 2, "xmax": 16, "ymax": 12}),
        "{answer}"
    );
    assert!(close(&answer[0]["score"], score), "{answer} against {score}");
    // Above the threshold: nothing found, an empty list.
    let (status, answer) = post_bytes(&base, &format!("{path}?threshold=0.995"), "image/png", png(255)).await;
    assert_eq!((status, answer), (200, json!([])));
    // A list of base64 images: one list per image (a light gray one scores about 0.81).
    let encoded = |shade| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, png(shade));
    let body = json!({"inputs": [encoded(0), encoded(160)], "parameters": {"threshold": 0.1}});
    let (status, answer) = post(&base, &path, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0][0]["label"], "dark", "{answer}");
    assert_eq!(answer[1][0]["label"], "light", "{answer}");
    // Parameters are checked and named; a classifier's is not a detector's.
    let (status, answer) = post_bytes(&base, &format!("{path}?threshold=2"), "image/png", png(255)).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("`parameters.threshold` must be from 0 to 1"),
        "{answer}"
    );
    let (status, answer) = post_bytes(&base, &format!("{path}?top_k=2"), "image/png", png(255)).await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = post_bytes(&base, &path, "image/png", b"not a png".to_vec()).await;
    assert_eq!(status, 422, "{answer}");
    let info = get(&base, &format!("/info?model={DETECTOR}")).await;
    assert_eq!(
        info["model_type"]["object_detector"]["id2label"]["1"], "light",
        "{info}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_scored_against_any_labels_and_embedded_beside_texts() {
    let base = start_fakes().await;
    let path = format!("/models/{PAIRS}/predict");
    // White: the image points along `good`, (1.1, 0.1) normalised, as the hypothesis
    // holding `good` does; the one holding `bad` is (0.1, 1.1), at cosine 0.22 / 1.22.
    let unit = |x: f64, y: f64| [x / x.hypot(y), y / x.hypot(y)];
    let light = unit(1.1, 0.1);
    let off = 0.22 / 1.22;
    let best = 1.0 / (1.0 + (-f64::from(PAIRS_SCALE) * (1.0 - off)).exp());
    let (status, answer) = post_bytes(
        &base,
        &format!("{path}?candidate_labels=bad,%20good"),
        "image/png",
        png(255),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["label"], "good", "{answer}");
    assert_eq!(answer[1]["label"], "bad", "{answer}");
    assert!(close(&answer[0]["score"], best), "{answer} against {best}");
    // A list of base64 images with a template of the request's own: one list per image.
    let encoded = |shade| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, png(shade));
    let body = json!({
        "inputs": [encoded(0), encoded(255)],
        "parameters": {"candidate_labels": ["good", "bad", "slow"], "hypothesis_template": "the {} one"},
    });
    let (status, answer) = post(&base, &path, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer.as_array().map(Vec::len), Some(2), "{answer}");
    // Dark: `bad` and `slow` point the same way; the pipeline keeps their order on a tie.
    assert_eq!(answer[0][0]["label"], "bad", "{answer}");
    assert_eq!(answer[0][1]["label"], "slow", "{answer}");
    assert_eq!(answer[1][0]["label"], "good", "{answer}");
    // A form: the image as a file part, the labels as a text part.
    let form = reqwest::multipart::Form::new()
        .part("image", reqwest::multipart::Part::bytes(png(255)).file_name("a.png"))
        .text("candidate_labels", "bad,good");
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer[0]["label"], "good", "{answer}");
    // What the pipeline needs is asked for by name.
    for (query, wanted) in [
        ("", "`parameters.candidate_labels` is required"),
        (
            "?candidate_labels=%20,%20",
            "`parameters.candidate_labels` holds no label",
        ),
        (
            "?candidate_labels=good&hypothesis_template=a%20photo",
            "must hold exactly one `{}`",
        ),
        ("?candidate_labels=good&top_k=1", "top_k"),
    ] {
        let (status, answer) = post_bytes(&base, &format!("{path}{query}"), "image/png", png(255)).await;
        assert_eq!(status, 422, "{query}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(wanted), "{query}: {answer}");
    }
    // The image tower's embeddings: one vector for one image, a list for a list.
    let embeddings = format!("/models/{PAIRS}/image-embeddings");
    let (status, answer) = post_bytes(&base, &embeddings, "image/png", png(255)).await;
    assert_eq!(status, 200, "{answer}");
    let vector = floats(&answer);
    assert!(
        (vector[0] - light[0]).abs() < 1e-6 && (vector[1] - light[1]).abs() < 1e-6,
        "{answer}"
    );
    let (status, answer) = post(&base, &embeddings, &json!({"inputs": [encoded(0)]})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(floats(&answer[0]).len(), 2, "{answer}");
    let (status, answer) = post_bytes(
        &base,
        &format!("/models/{IMAGES}/image-embeddings"),
        "image/png",
        png(255),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("image embeddings"),
        "{answer}"
    );
    // The text tower on OpenAI's route: `good` in the images' space.
    let (status, answer) = post(&base, "/v1/embeddings", &json!({"model": PAIRS, "input": "good"})).await;
    assert_eq!(status, 200, "{answer}");
    let vector = floats(&answer["data"][0]["embedding"]);
    assert!((vector[0] - light[0]).abs() < 1e-6, "{answer}");
    let info = get(&base, &format!("/info?model={PAIRS}")).await;
    assert_eq!(
        info["model_type"]["zero_shot_image_classifier"]["dimension"], 2,
        "{info}"
    );
    // KServe describes its image tower's tensors, and that v2 infer does not serve it.
    let meta = get(&base, &format!("/v2/models/{PAIRS}")).await;
    assert_eq!(meta["inputs"][0]["name"], "pixel_values", "{meta}");
    assert_eq!(meta["parameters"]["infer"], false, "{meta}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_text_model_never_batches_its_images_with_its_texts() {
    // Images and texts at once, on one engine: a worker that merged them would run texts
    // through the image tower's path (or the other way) and fail every request of the batch.
    let base = start_fakes().await;
    let requests = (0..24).map(|index| {
        let base = base.clone();
        tokio::spawn(async move {
            if index % 2 == 0 {
                post_bytes(
                    &base,
                    &format!("/models/{PAIRS}/image-embeddings"),
                    "image/png",
                    png(255),
                )
                .await
            } else {
                post(
                    &base,
                    "/v1/embeddings",
                    &json!({"model": PAIRS, "input": ["good", "bad"]}),
                )
                .await
            }
        })
    });
    for (index, answered) in futures_util::future::join_all(requests).await.into_iter().enumerate() {
        let (status, answer) = answered.expect("the request's task runs");
        assert_eq!(status, 200, "request {index}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_routes_answer_in_tei_shapes() {
    let base = start_fakes().await;
    // The one embedding model needs no name; /embed always answers a list of vectors.
    let (status, answer) = post(&base, "/embed", &json!({"inputs": "good", "normalize": false})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(floats(&answer[0]), [3.0, 1.0, 0.0, 1.0]);
    // One classifier served: /predict answers every label, best first.
    let (status, answer) = post(&base, "/predict", &json!({"inputs": "fast"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["label"], "positive", "{answer}");
    assert_eq!(answer.as_array().map(Vec::len), Some(2), "{answer}");
    // Tokens with byte offsets, special ones marked.
    let (status, answer) = post(&base, "/tokenize", &json!({"inputs": "Rust is", "model": CLASSIFIER})).await;
    assert_eq!(status, 200, "{answer}");
    let tokens = answer[0].as_array().unwrap();
    assert_eq!(tokens.len(), 4, "{answer}");
    assert_eq!(tokens[0]["special"], true);
    assert_eq!(
        (&tokens[1]["text"], &tokens[1]["start"], &tokens[1]["stop"]),
        (&json!("Rust"), &json!(0), &json!(4))
    );
    let info = get(&base, &format!("/info?model={CLASSIFIER}")).await;
    assert_eq!(info["model_type"]["classifier"]["id2label"]["1"], "positive");
    assert_eq!(info["max_input_length"], MAX_LENGTH);
    let info = get(&base, &format!("/info?model={EMBEDDER}")).await;
    assert_eq!(info["model_type"]["embedding"]["pooling"], "mean");
    // Longer than the model takes, without truncate: refused naming the input.
    let long = "good ".repeat(MAX_LENGTH * 2);
    let (status, answer) = post(&base, "/embed", &json!({"inputs": ["good", long]})).await;
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"].as_str().unwrap_or_default().contains("`inputs[1]`"),
        "{answer}"
    );
    let (status, _) = post(&base, "/embed", &json!({"inputs": long, "truncate": true})).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_refusals_carry_teis_error_types_and_statuses() {
    let base = start_fakes().await;
    let long = "good ".repeat(MAX_LENGTH * 2);
    let cases = [
        (json!({"inputs": []}), 400, "Empty"),
        (json!({"inputs": " "}), 400, "Empty"),
        (json!({"inputs": long}), 413, "Validation"),
        (json!({"inputs": "good", "normalize": "yes"}), 422, "Validation"),
        (json!({"inputs": "good", "model": "nope"}), 404, "Validation"),
        (json!({"inputs": format!("good {CRASH}")}), 424, "Backend"),
    ];
    for (body, status, error_type) in cases {
        let (got, answer) = post(&base, "/embed", &body).await;
        assert_eq!(
            (got, &answer["error_type"]),
            (status, &json!(error_type)),
            "{body}: {answer}"
        );
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
    }
    let (status, answer) = post(&base, "/predict", &json!({"inputs": CRASH})).await;
    assert_eq!((status, &answer["error_type"]), (424, &json!("Backend")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_fails_its_own_requests_in_each_protocols_shape_and_the_next_runs() {
    let base = start_fakes().await;
    let crash = format!("good {CRASH}");
    let (status, answer) = post(&base, &format!("/models/{EMBEDDER}/predict"), &json!({"inputs": crash})).await;
    assert_eq!((status, &answer["error_type"]), (500, &json!("inference")), "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("the fake session failed"),
        "the cause is named: {answer}"
    );
    let body = json!({"model": EMBEDDER, "input": crash});
    let (status, answer) = post(&base, "/v1/embeddings", &body).await;
    assert_eq!(
        (status, &answer["error"]["type"]),
        (500, &json!("server_error")),
        "{answer}"
    );
    let (status, answer) = post(&base, "/embed", &json!({"inputs": crash, "model": EMBEDDER})).await;
    assert_eq!(status, 424, "{answer}");
    // The metrics count the status each client got: OpenAI's 500 and TEI's 424.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (route, status) in [("/v1/embeddings", 500), ("/embed", 424)] {
        let line = format!(
            "modelcrate_requests_total{{model=\"{EMBEDDER}\",route=\"{route}\",status=\"{status}\",error_type=\"inference\"}} 1"
        );
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    // The engine runs on: the next request of every protocol is answered.
    let (status, answer) = post(
        &base,
        &format!("/models/{EMBEDDER}/predict"),
        &json!({"inputs": "good"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post(&base, "/v1/embeddings", &json!({"model": EMBEDDER, "input": "good"})).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = post(&base, "/embed", &json!({"inputs": "good"})).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_embeddings_answer_in_openais_shape_and_refuse_in_it() {
    let base = start_fakes().await;
    let body = json!({"model": EMBEDDER, "input": ["good", "bad bad"]});
    let (status, answer) = post(&base, "/v1/embeddings", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["data"][1]["index"], 1);
    assert_eq!(floats(&answer["data"][0]["embedding"]).len(), DIMENSION);
    // 3 + 4 tokens, special ones included.
    assert_eq!(answer["usage"]["prompt_tokens"], 7, "{answer}");
    let body = json!({"model": EMBEDDER, "input": "good", "dimensions": 2});
    let (_, answer) = post(&base, "/v1/embeddings", &body).await;
    let cut = floats(&answer["data"][0]["embedding"]);
    assert_eq!(cut.len(), 2);
    assert!(
        (cut.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-6,
        "re-normalised: {cut:?}"
    );
    // OpenAI's status for an invalid request: 400 (its client raises BadRequestError).
    let (status, answer) = post(&base, "/v1/embeddings", &json!({"model": CLASSIFIER, "input": "a"})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["param"], "model", "{answer}");
    assert_eq!(answer["error"]["type"], "invalid_request_error", "{answer}");
    let models = get(&base, "/v1/models").await;
    assert_eq!(models["data"].as_array().map(Vec::len), Some(7), "{models}");
    // The embedding model and the image–text model's text tower are marked as embedders.
    let embedders: Vec<&Value> = models["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|model| model["embeddings"] == true)
        .map(|model| &model["id"])
        .collect();
    assert_eq!(embedders, [EMBEDDER, PAIRS], "{models}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kserve_describes_from_the_signature_and_infers_from_text() {
    let base = start_fakes().await;
    let meta = get(&base, &format!("/v2/models/{CLASSIFIER}")).await;
    assert_eq!(
        meta["inputs"][0],
        json!({"name": "text", "datatype": "BYTES", "shape": [-1]})
    );
    assert_eq!(
        meta["outputs"][0],
        json!({"name": "logits", "datatype": "FP32", "shape": [-1, 2]})
    );
    let body = json!({"id": "x", "inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": ["good", "slow slow"]}]});
    let (status, answer) = post(&base, &format!("/v2/models/{CLASSIFIER}/infer"), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["id"], "x");
    assert_eq!(floats(&answer["outputs"][0]["data"]), [0.0, 1.0, 2.0, 0.0]);
    assert_eq!(answer["outputs"][2]["data"], json!(["positive", "negative"]));
    let (status, answer) = post(&base, &format!("/v2/models/{TAGGER}/infer"), &body).await;
    assert_eq!(status, 422, "a token classifier has no v2 inference: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_json_with_the_status_that_names_the_problem() {
    let base = start_fakes().await;
    let predict = format!("/models/{CLASSIFIER}/predict");
    for (body, status, says) in [
        (json!({}), 422, "missing field `inputs`"),
        (json!({"inputs": ""}), 422, "`inputs` is empty"),
        (json!({"inputs": ["a", 3]}), 422, "`inputs[1]`"),
        (
            json!({"inputs": "a", "parameters": {"top_k": 0}}),
            422,
            "`parameters.top_k`",
        ),
        (
            json!({"inputs": "a", "parameters": {"normalize": true}}),
            422,
            "unknown field `parameters.normalize`",
        ),
        (json!({"inputs": vec!["a"; 81]}), 413, "at most 80"),
    ] {
        let (got, answer) = post(&base, &predict, &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{body}: {error}");
        assert!(answer["error_type"].is_string(), "{answer}");
    }
    let (status, answer) = post(&base, "/models/nothing/predict", &json!({"inputs": "a"})).await;
    assert_eq!((status, &answer["error_type"]), (404, &json!("model_not_found")));
    let (status, answer) = post_bytes(&base, &predict, "text/plain", b"good".to_vec()).await;
    assert_eq!(status, 415, "{answer}");
    let (status, answer) = post_bytes(&base, &predict, "application/json", b"{\"inputs\": ".to_vec()).await;
    assert_eq!(status, 400, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_are_answered_only_from_the_allowed_origins() {
    let origin = "https://app.example.com";
    let client = reqwest::Client::new();
    let preflight = |base: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{base}/models/{CLASSIFIER}/predict"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowing = start_fakes_for(&[origin]).await;
    let answer = preflight(&allowing).await.unwrap();
    assert_eq!(answer.headers()["access-control-allow-origin"], origin);
    let answer = client
        .post(format!("{allowing}/models/{CLASSIFIER}/predict"))
        .header("origin", origin)
        .json(&json!({"inputs": "good"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["access-control-allow-origin"], origin);
    let exposed = answer.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("x-inference-time"),
        "{exposed}"
    );
    let other = client
        .post(format!("{allowing}/models/{CLASSIFIER}/predict"))
        .header("origin", "https://elsewhere.example")
        .json(&json!({"inputs": "good"}))
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // Without the flag, no CORS headers at all.
    let closed = start_fakes().await;
    let answer = preflight(&closed).await.unwrap();
    assert!(answer.headers().get("access-control-allow-origin").is_none());
    assert!(modelcrate_server::routes::with_cors(axum::Router::new(), &["bad\norigin".into()]).is_err());
}

/// Whether `template` (`/models/{name}/predict`) matches `path`.
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
async fn the_openapi_document_describes_every_route_and_each_models_facts() {
    let base = start_fakes().await;
    let document = get(&base, "/openapi.json").await;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
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
        // Pages for a browser, not API routes.
        if endpoint.path == "/openapi.json"
            || endpoint.path.starts_with("/docs")
            || endpoint.path == "/"
            || endpoint.path.starts_with("/assets/")
        {
            continue;
        }
        let method = endpoint.method.as_str().to_lowercase();
        let described = paths
            .iter()
            .any(|(path, operations)| fills(endpoint.path, path) && operations.get(&method).is_some());
        assert!(described, "{method} {} is in /openapi.json", endpoint.path);
    }
    // A model's labels, embedding length and entity types are in its schemas. One answer
    // or a list of them is `anyOf`: an empty list fits both.
    let answer = |model: &str| {
        paths[&format!("/models/{model}/predict")]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["anyOf"][0]
            .clone()
    };
    assert_eq!(
        answer(CLASSIFIER)["items"]["allOf"][1]["properties"]["label"]["enum"],
        json!(["negative", "positive"])
    );
    assert_eq!(answer(EMBEDDER)["maxItems"], DIMENSION);
    assert_eq!(
        answer(TAGGER)["items"]["oneOf"][0]["allOf"][1]["properties"]["entity_group"]["enum"],
        json!(["LANG", "O"])
    );
    let embeddings = &paths["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]["allOf"];
    assert_eq!(embeddings[1]["properties"]["model"]["enum"], json!([EMBEDDER, PAIRS]));
    assert_eq!(
        embeddings[1]["required"],
        json!(["model"]),
        "two models: one must be named"
    );
    assert_eq!(
        embeddings[2]["anyOf"][0]["properties"],
        json!({"model": {"const": EMBEDDER}, "dimensions": {"type": ["integer", "null"], "maximum": DIMENSION}}),
        "`dimensions` is at most the named model's"
    );
    // `/tokenize` names the models that read text; an image classifier does not.
    let tokenizers = &paths["/tokenize"]["post"]["requestBody"]["content"]["application/json"]["schema"]["allOf"][1];
    let tokenizers = tokenizers["properties"]["model"]["enum"].as_array().unwrap();
    assert!(
        tokenizers.contains(&json!(CLASSIFIER)) && tokenizers.contains(&json!(PAIRS)),
        "{tokenizers:?}"
    );
    assert!(!tokenizers.contains(&json!(IMAGES)), "{tokenizers:?}");
    // A form must hold its image; a form's `top_k` may be `null`, as the JSON body's.
    let form =
        &paths[&format!("/models/{IMAGES}/predict")]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"];
    assert_eq!(form["required"], json!(["image"]));
    assert_eq!(form["properties"]["top_k"]["type"], json!(["integer", "null"]));
    // Requests are described by the types the handlers read.
    let schemas = &document["components"]["schemas"];
    assert_eq!(
        schemas["ClassifyRequest"]["required"],
        json!(["inputs"]),
        "{}",
        schemas["ClassifyRequest"]
    );
    assert!(
        schemas["ClassifyParameters"]["properties"]["function_to_apply"].is_object(),
        "{schemas}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_and_a_model_card_are_pages_and_json_stays_the_default() {
    let base = start_fakes().await;
    let client = reqwest::Client::new();
    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<script src="/assets/playground.js"></script>"#),
        "{html}"
    );
    for (asset, media) in [("playground.js", "text/javascript"), ("modelcrate.css", "text/css")] {
        let answer = client.get(format!("{base}/assets/{asset}")).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{asset}");
        assert!(
            answer.headers()["content-type"].to_str().unwrap().starts_with(media),
            "{asset}"
        );
    }
    // An API client (no Accept, or JSON) gets JSON: the model as /models lists it, its
    // card and its variants, the serving one marked.
    let (status, described) = common::get_status(&base, &format!("/models/{CLASSIFIER}")).await;
    assert_eq!(status, 200, "{described}");
    assert_eq!(described["name"], CLASSIFIER);
    assert_eq!(described["task"], "text-classification");
    assert!(described["card"].is_string(), "{described}");
    let serving: Vec<&Value> = described["variants"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["serves"] == true)
        .map(|v| &v["name"])
        .collect();
    assert_eq!(serving, [&described["variant"]["name"]], "{described}");
    // A browser gets the card as a page.
    let card = client
        .get(format!("{base}/models/{CLASSIFIER}"))
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(card.status(), 200);
    assert!(
        card.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = card.text().await.unwrap();
    assert!(
        html.contains(&format!("<h1>{CLASSIFIER}</h1>")) && html.contains(r#"<tr class="serves">"#),
        "{html}"
    );
    assert!(
        html.contains("<h2>Limits</h2>") && html.contains("--max-client-batch-size"),
        "{html}"
    );
    // An unknown model: 404 in JSON.
    let (status, answer) = common::get_status(&base, "/models/nope").await;
    assert_eq!(
        (status, &answer["error_type"]),
        (404, &json!("model_not_found")),
        "{answer}"
    );
}
