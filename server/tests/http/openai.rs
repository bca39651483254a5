//! OpenAI's `/v1/embeddings` against the real embedding model: every encoding equals
//! sentence-transformers, and refusals have OpenAI's error shape.

use super::*;

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
    let base = start_only(&["minilm-embed", "news-embed"]).await;
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
    // The pretrained model the same way, every golden case in one request: a text beyond
    // its 256 tokens is refused (400, as OpenAI refuses a context length exceeded; its
    // requests cannot ask for truncation), and the
    // rest of its cases equal sentence-transformers' (the long ones cut where it cuts them
    // are the TEI test's, which can ask).
    let pretrained = reference_of("minilm-embed");
    let pretrained_cases = pretrained["cases"].as_array().unwrap();
    let texts_of_pretrained: Vec<&Value> = pretrained_cases.iter().map(|case| &case["text"]).collect();
    let body = json!({"model": "minilm-embed", "input": texts_of_pretrained});
    let (status, answer) = post(&base, "/v1/embeddings", &body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["param"], "input", "{answer}");
    assert!(
        answer["error"]["message"].as_str().unwrap().contains(
            "`input[78]` is longer than the model's 256 tokens; the server cuts such texts only when started with --auto-truncate"
        ),
        "{answer}"
    );
    let pretrained_cases: Vec<&Value> = pretrained_cases
        .iter()
        .filter(|case| case["input_ids"].as_array().unwrap().len() < 256)
        .collect();
    let texts_of_pretrained: Vec<&Value> = pretrained_cases.iter().map(|case| &case["text"]).collect();
    let body = json!({"model": "minilm-embed", "input": texts_of_pretrained});
    let (status, answer) = post(&base, "/v1/embeddings", &body).await;
    assert_eq!(status, 200, "{answer}");
    for (item, case) in answer["data"].as_array().unwrap().iter().zip(&pretrained_cases) {
        assert!(
            cosine(&vector(&item["embedding"]), &vector(&case["embedding"])) >= 0.99999,
            "{}",
            case["id"]
        );
    }
    assert_eq!(answer["data"].as_array().unwrap().len(), pretrained_cases.len());
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
    let base = start_only(&["news-embed", "news-topic"]).await;
    let cases = [
        (
            json!({"model": "news-topic", "input": "a text"}),
            400,
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
            400,
            "token ids",
            json!("input"),
        ),
        (
            json!({"model": "news-embed", "input": ""}),
            400,
            "empty",
            json!("input"),
        ),
        (
            json!({"model": "news-embed", "input": "a", "dimensions": 1000}),
            400,
            "more than the 384",
            json!("dimensions"),
        ),
        (
            json!({"model": "news-embed", "input": "a", "encoding_format": "int8"}),
            400,
            "encoding_format",
            json!("encoding_format"),
        ),
        (json!({"input": "a"}), 400, "missing field `model`", json!("model")),
        (
            json!({"model": "news-embed", "input": "a", "stream": true}),
            400,
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
    // A text past the model's 128 tokens: refused unless the server truncates; an invalid
    // request to OpenAI's clients, 400, as OpenAI answers a context length exceeded.
    let long = "word ".repeat(400);
    let (status, answer) = post(&base, "/v1/embeddings", &json!({"model": "news-embed", "input": long})).await;
    assert_eq!(status, 400, "{answer}");
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
