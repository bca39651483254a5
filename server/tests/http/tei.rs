//! text-embeddings-inference's routes (`/embed`, `/predict`, `/tokenize`, `/info`)
//! against the real models, with the model selector.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tei_routes_answer_in_tei_shapes_with_a_model_selector() {
    let base = start().await;
    let embed = reference_of("news-embed");
    let case = &embed["cases"][0];
    // /embed: always a list of vectors; two embedding models are served, so one is named.
    let (status, answer) = post(&base, "/embed", &json!({"inputs": case["text"]})).await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains(
            r#"missing field `model`: 2 feature-extraction models are served (["minilm-embed", "news-embed"])"#
        ),
        "{answer}"
    );
    // Each equals sentence-transformers; the pretrained model's longest case (beyond its
    // 256 tokens) is cut where sentence-transformers cuts it, since the request asks.
    for (name, index) in [("news-embed", 0), ("minilm-embed", 78)] {
        let reference = reference_of(name);
        let case = &reference["cases"][index];
        let body = json!({"inputs": case["text"], "model": name, "truncate": true});
        let (status, answer) = post(&base, "/embed", &body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer.as_array().unwrap().len(), 1);
        assert!(
            cosine(&vector(&answer[0]), &vector(&case["embedding"])) >= 0.99999,
            "{name}"
        );
    }
    let long = &reference_of("minilm-embed")["cases"][78];
    assert_eq!(long["input_ids"].as_array().unwrap().len(), 256);
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
