//! The Hugging Face Inference API route, `/models/{name}/predict`, against the real
//! models: every task's answers equal the `transformers` pipeline's (or SetFit's,
//! sentence-transformers'), images arrive raw, in a form or as base64, and bad requests
//! are refused naming the problem.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predict_answers_like_the_transformers_pipeline_for_every_golden_input() {
    let base = start_only(&["news-topic"]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_answer_like_sentence_transformers_in_the_inference_api_shape() {
    let base = start_only(&["news-embed"]).await;
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
    let base = start_only(&["news-topic"]).await;
    let body = json!({"inputs": "Arsenal beat Chelsea 2-1 in the league on Saturday"});
    let (status, answer) = post(&base, "/models/news-topic/predict", &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer[0]["label"], "sports", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_4xx_json_error_that_names_the_problem() {
    let base = start_only(&["news-topic"]).await;
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
    let base = start_only(&["news-topic"]).await;
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
    let base = start_only(&["release-ner"]).await;
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

/// What the server answered one golden image, asserted against what its golden case calls
/// for: Python could not open it (422, a validation error), it is larger than the test
/// server's pixel limit (413 naming the flag), or an answer to compare with PyTorch's.
enum Posted {
    Answered(Value),
    Refused(Value),
    TooLarge,
}

async fn post_golden_image(base: &str, path: &str, media: &str, case: &Value, bytes: Vec<u8>) -> Posted {
    let id = &case["id"];
    let (status, answer) = post_bytes(base, path, media, bytes).await;
    if case.get("error").is_some() {
        assert_eq!(
            (status, &answer["error_type"]),
            (422, &json!("validation")),
            "{id}: {answer}"
        );
        return Posted::Refused(answer);
    }
    if case["width"].as_u64().unwrap() * case["height"].as_u64().unwrap() > MAX_IMAGE_PIXELS {
        assert_eq!(status, 413, "{id}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("--max-image-pixels"),
            "{id}: {answer}"
        );
        return Posted::TooLarge;
    }
    assert_eq!(status, 200, "{id}: {answer}");
    Posted::Answered(answer)
}

/// The dot product of two JSON vectors: their cosine when both are unit vectors.
fn dot(a: &Value, b: &Value) -> f64 {
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.as_f64().unwrap() * y.as_f64().unwrap())
        .sum()
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
        let answer = match post_golden_image(&base, "/models/animal-shapes/predict", media, &case, bytes).await {
            Posted::Answered(answer) => answer,
            Posted::Refused(answer) => {
                assert!(answer["error"].as_str().unwrap().contains("PNG"), "{id}: {answer}");
                refused += 1;
                continue;
            }
            Posted::TooLarge => {
                too_large += 1;
                continue;
            }
        };
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
async fn objects_are_found_as_pytorch_finds_them_in_the_pipelines_shape() {
    let base = start_serving(
        &["animal-detect"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    let reference = reference_of("animal-detect");
    let (mut objects, mut refused, mut too_large) = (0, 0, 0);
    for case in reference["cases"].as_array().unwrap() {
        let (id, file) = (case["id"].as_str().unwrap(), case["file"].as_str().unwrap());
        if !file.ends_with(".png") {
            continue;
        }
        let bytes = std::fs::read(workspace().join("golden/animal-detect").join(file)).unwrap();
        let answer = match post_golden_image(&base, "/models/animal-detect/predict", "image/png", case, bytes).await {
            Posted::Answered(answer) => answer,
            Posted::Refused(_) => {
                refused += 1;
                continue;
            }
            Posted::TooLarge => {
                too_large += 1;
                continue;
            }
        };
        // PIL's very pixels: PyTorch's objects in order, scores within the FP32 bound, and
        // each corner PyTorch's truncated to a whole pixel (its float within 0.5 px here).
        let (found, expected) = (answer.as_array().unwrap(), case["pipeline"].as_array().unwrap());
        assert_eq!(found.len(), expected.len(), "{id}: {answer}");
        for (rust, python) in found.iter().zip(expected) {
            assert_eq!(rust["label"], python["label"], "{id}");
            assert!(
                (rust["score"].as_f64().unwrap() - python["score"].as_f64().unwrap()).abs() <= SCORE_BOUND,
                "{id}"
            );
            for corner in ["xmin", "ymin", "xmax", "ymax"] {
                let pixel = rust["box"][corner].as_u64().unwrap() as f64;
                let exact = python["box"][corner].as_f64().unwrap();
                assert!(
                    exact.floor() - pixel <= 1.0 && pixel <= exact.floor() + 1.0,
                    "{id} {corner}: {pixel} for {exact}"
                );
            }
            objects += 1;
        }
    }
    assert!(
        objects > 0 && refused == 1 && too_large == 1,
        "{objects} {refused} {too_large}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_scored_zero_shot_as_pytorch_scores_them_in_the_pipelines_shape() {
    let base = start_serving(
        &["animal-clip"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    let reference = reference_of("animal-clip");
    let labels = reference["candidate_labels"].as_array().unwrap();
    let joined: Vec<&str> = labels.iter().map(|label| label.as_str().unwrap()).collect();
    let query = format!("?candidate_labels={}", joined.join(","));
    let (mut compared, mut refused, mut too_large) = (0, 0, 0);
    for case in reference["cases"].as_array().unwrap() {
        let (id, file) = (case["id"].as_str().unwrap(), case["file"].as_str().unwrap());
        if !file.ends_with(".png") {
            continue;
        }
        let bytes = std::fs::read(workspace().join("golden/animal-clip").join(file)).unwrap();
        let path = format!("/models/animal-clip/predict{query}");
        let answer = match post_golden_image(&base, &path, "image/png", case, bytes.clone()).await {
            Posted::Answered(answer) => answer,
            Posted::Refused(_) => {
                refused += 1;
                continue;
            }
            Posted::TooLarge => {
                too_large += 1;
                continue;
            }
        };
        // PIL's very pixels: PyTorch's candidates in its order, scores within the FP32 bound.
        let max = compare(&answer, &case["pipeline"], id);
        assert!(max <= SCORE_BOUND, "{id}: {max}");
        // The image tower's embedding, PyTorch's within cosine 0.99999.
        let (status, embedding) = post_bytes(&base, "/models/animal-clip/image-embeddings", "image/png", bytes).await;
        assert_eq!(status, 200, "{id}: {embedding}");
        let cosine = dot(&embedding, &case["image_embeds"]);
        assert!(cosine >= 0.99999, "{id}: cosine {cosine}");
        compared += 1;
    }
    // The text tower on OpenAI's route: every golden text's embedding, PyTorch's; the one
    // longer than the tower's 32 tokens refused, as OpenAI's route refuses without
    // --auto-truncate, and the empty one: both invalid requests, 400 as OpenAI answers them,
    // naming `input`.
    for text in reference["texts"].as_array().unwrap() {
        let body = json!({"model": "animal-clip", "input": text["text"]});
        let (status, answer) = post(&base, "/v1/embeddings", &body).await;
        if let Some("long" | "empty") = text["id"].as_str() {
            assert_eq!((status, &answer["error"]["param"]), (400, &json!("input")), "{answer}");
            continue;
        }
        assert_eq!(status, 200, "{}: {answer}", text["id"]);
        let cosine = dot(&answer["data"][0]["embedding"], &text["text_embeds"]);
        assert!(cosine >= 0.99999, "{}: cosine {cosine}", text["id"]);
    }
    assert!(
        compared >= 15 && refused == 1 && too_large == 1,
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

/// A JPEG cut off in transit is refused, raw or in base64, never answered from the gray
/// a decoder fills the missing part with (PIL refuses it too); the whole file answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_image_is_refused_not_guessed_at() {
    use base64::Engine as _;
    let base = start_serving(
        &["animal-shapes"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    let route = "/models/animal-shapes/predict";
    let jpeg = std::fs::read(workspace().join("golden/animal-shapes/images/china.jpg")).unwrap();
    let (status, answer) = post_bytes(&base, route, "image/jpeg", jpeg.clone()).await;
    assert_eq!(status, 200, "{answer}");
    for cut in [jpeg.len() / 2, jpeg.len() - 2] {
        let partial = jpeg[..cut].to_vec();
        let (status, answer) = post_bytes(&base, route, "image/jpeg", partial.clone()).await;
        assert_eq!(status, 422, "{cut} bytes: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("the JPEG image is cut off"),
            "{answer}"
        );
        let encoded = base64::engine::general_purpose::STANDARD.encode(&partial);
        let (status, answer) = post(&base, route, &json!({"inputs": encoded})).await;
        assert_eq!(status, 422, "{cut} bytes in base64: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("the JPEG image is cut off"),
            "{answer}"
        );
    }
}

/// Every golden question through the route, by the recorded calls and each case's own
/// parameters, equals the question-answering pipeline's answer (spans and character
/// offsets identical, scores within 1e-4); all of them in one request too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_are_answered_like_the_question_answering_pipeline() {
    let base = start_serving(
        &["release-qa"],
        VariantChoice::Named("fp32".into()),
        BatchingOptions::default(),
        REQUEST_TIMEOUT,
    )
    .await;
    let reference = reference_of("release-qa");
    let cases = reference["cases"].as_array().unwrap();
    let route = "/models/release-qa/predict";
    let inputs = |case: &Value| json!({"question": case["question"], "context": case["context"]});
    let mut compared = 0;
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let mut calls: Vec<(String, Value)> = reference["pipeline_calls"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, call)| (key.clone(), call.clone()))
            .collect();
        if let Some(own) = case.get("parameters") {
            calls.push(("own".into(), own.clone()));
        }
        for (key, parameters) in calls {
            let body = json!({"inputs": inputs(case), "parameters": parameters});
            let (status, answer) = post(&base, route, &body).await;
            assert_eq!(status, 200, "{id} {key}: {answer}");
            assert!(compare(&answer, &case["pipeline"][&key], &format!("{id} {key}")) <= SCORE_BOUND);
            compared += 1;
        }
    }
    assert!(compared > cases.len() * 7, "{compared} answers compared");
    let all: Vec<Value> = cases.iter().map(inputs).collect();
    let (status, answer) = post(&base, route, &json!({"inputs": all})).await;
    assert_eq!(status, 200, "{answer}");
    assert!(compare(&answer, &reference["batch"]["pipeline"], "all in one request") <= SCORE_BOUND);
    // The answer is always the context's own characters.
    let case = &cases[0];
    let (_, answer) = post(&base, route, &json!({"inputs": inputs(case)})).await;
    let context: Vec<char> = case["context"].as_str().unwrap().chars().collect();
    let (start, end) = (
        answer["start"].as_u64().unwrap() as usize,
        answer["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(
        answer["answer"].as_str().unwrap(),
        context[start..end].iter().collect::<String>()
    );
    post_status(
        &base,
        route,
        &json!({"inputs": {"question": "Which?"}}),
        422,
        "missing field `inputs.context`",
    )
    .await;
    let long_question = "which release ".repeat(40);
    post_status(
        &base,
        route,
        &json!({"inputs": {"question": long_question, "context": "PostgreSQL 16.2 is out."}}),
        422,
        "more than `max_question_len` (64)",
    )
    .await;
}
