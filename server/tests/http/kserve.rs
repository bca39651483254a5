//! KServe v2 (Open Inference Protocol) against the real models: metadata from the
//! signature, inference from text or from token tensors.

use super::*;

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
    post_status(
        &base,
        path,
        &unknown,
        422,
        "`inputs[0].name` is `pixels`, an unknown input",
    )
    .await;
    let mut both = text(json!(["a"]), json!([1]));
    both["inputs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "input_ids", "datatype": "INT64", "shape": [1, 1], "data": [101]}));
    post_status(&base, path, &both, 422, "send one or the other").await;
    let mut no_such_output = text(json!(["a text"]), json!([1]));
    no_such_output["outputs"] = json!([{"name": "probabilities"}]);
    post_status(
        &base,
        path,
        &no_such_output,
        422,
        "`outputs[0].name` is `probabilities`, an unknown output",
    )
    .await;
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
