//! What the server says of itself: the models it serves and why that variant, health,
//! metrics, the request id, draining on SIGTERM, and `/openapi.json` with the real
//! models' facts.

use super::*;

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
    let clip = by_name["animal-clip"];
    assert_eq!(clip["task"], "zero-shot-image-classification");
    assert_eq!(clip["dimension"], 256);
    assert_eq!(clip["image"]["crop_size"], 96);
    assert_eq!(
        clip["image_text"]["text_signature"]["outputs"],
        json!([{"name": "text_embeds", "dtype": "float32", "dims": [null, 256]}])
    );
    assert!(
        clip["image_text"]["logit_scale"]
            .as_f64()
            .is_some_and(|scale| scale > 0.0),
        "{clip}"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_a_request_id_and_a_usable_one_is_kept() {
    let base = start_only(&["news-topic"]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_the_real_models_as_typed() {
    let base = start().await;
    let document = get(&base, "/openapi.json").await;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for required in [
        "/models/news-topic/predict",
        "/v1/embeddings",
        "/embed",
        "/predict",
        "/tokenize",
        "/v2/models/{name}/infer",
        "/metrics",
    ] {
        assert!(paths.contains_key(required), "{required} is described");
    }
    // Every route described and answering is `protocols.rs`'s test, on the fakes.
    // A model's labels, embedding length and entity types are in its schemas.
    let topic = &paths["/models/news-topic/predict"]["post"];
    let answer = &topic["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"][0];
    assert_eq!(
        answer["items"]["allOf"][1]["properties"]["label"]["enum"],
        json!(["business", "entertainment", "politics", "sports", "tech"])
    );
    let embedding = &paths["/models/news-embed/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        ["anyOf"][0];
    assert_eq!(embedding["maxItems"], 384);
    let entities = &paths["/models/release-ner/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        ["anyOf"][0];
    assert_eq!(
        entities["items"]["oneOf"][0]["allOf"][1]["properties"]["entity_group"]["enum"],
        json!(["PRODUCT", "VERSION", "O"])
    );
    assert_eq!(
        document["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]["allOf"][1]
            ["properties"]["model"]["enum"],
        json!(["animal-clip", "minilm-embed", "news-embed"])
    );
    // Where a route takes a model's name, the served names are its enum.
    let infer = &paths["/v2/models/{name}/infer"]["post"]["parameters"][0];
    assert!(
        infer["schema"]["enum"]
            .as_array()
            .is_some_and(|names| names.contains(&json!("news-topic"))),
        "{infer}"
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

/// The listener's limits on the real binary: a head larger than `--max-header-bytes` gets
/// 431; a client that sends its head a byte at a time, or never finishes it, is cut off
/// after `--header-read-timeout-ms`; past `--max-connections`, a client waits until a
/// place frees; and through all of it, other clients are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_and_oversized_headers_are_cut_off_while_others_are_answered() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    let artifacts = artifacts();
    let server = Binary::start(&[
        "--model",
        "news-topic",
        "--variant",
        "fp32",
        "--artifacts",
        artifacts.to_str().unwrap(),
        "--max-header-bytes",
        "16384",
        "--header-read-timeout-ms",
        "3000",
        "--max-connections",
        "8",
    ])
    .await;
    let base = server.base.clone();
    let address = base.trim_start_matches("http://").to_string();
    let client = reqwest::Client::new();
    let predict = format!("{base}/models/news-topic/predict");

    // A 20 KB header: 431 naming the flag. One of 100 KB, past four times the limit, is
    // not even read whole: hyper answers a bare 431 and closes the connection.
    let padded = |kib: usize| {
        client
            .post(&predict)
            .header("x-padding", "a".repeat(kib * 1024))
            .json(&json!({"inputs": "Arsenal won"}))
            .send()
    };
    let response = padded(20).await.unwrap();
    assert_eq!(response.status().as_u16(), 431);
    let refusal: Value = response.json().await.unwrap();
    assert_eq!(refusal["error_type"], "header_too_large", "{refusal}");
    assert!(
        refusal["error"]
            .as_str()
            .unwrap()
            .contains("--max-header-bytes (16384)"),
        "{refusal}"
    );
    assert_eq!(padded(100).await.unwrap().status().as_u16(), 431);
    assert_eq!(
        padded(15).await.unwrap().status().as_u16(),
        200,
        "a head within the limit is answered"
    );

    // A client sending its head a byte at a time, and five that start a request and never
    // finish its head: a normal request is answered at once beside them. With the client's
    // pooled connection they hold seven of the eight places, so none of them waits to be
    // accepted (a wait would start its clock before the server's) and one is to spare for
    // a closed connection the server has not yet let go.
    let dripping = {
        let address = address.clone();
        let connected = TcpStream::connect(&address).unwrap();
        tokio::task::spawn_blocking(move || {
            let mut stream = connected;
            let started = Instant::now();
            for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
                if stream.write_all(&[*byte]).is_err() || started.elapsed() > Duration::from_secs(10) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            started.elapsed()
        })
    };
    let mut slow = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        slow.push(stream);
    }
    let response = client
        .post(&predict)
        .json(&json!({"inputs": "Arsenal won"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // Answered beside them, not after them: when the answer came, every slow client was
    // still connected (nothing to read, no end of stream), within its header timeout. No
    // clock bound: the answer's time is the machine's, the order is the server's.
    for stream in &slow {
        stream.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let still_waiting =
            matches!(stream.peek(&mut byte), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock);
        assert!(
            still_waiting,
            "answered beside the slow ones, while they still hold their connections"
        );
        stream.set_nonblocking(false).unwrap();
    }

    // Each slow client is disconnected after the header timeout: its read ends.
    tokio::task::spawn_blocking(move || {
        for mut stream in slow {
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut rest = Vec::new();
            let read = stream.read_to_end(&mut rest);
            assert!(
                read.is_ok(),
                "a client that never finishes its head is disconnected: {read:?}"
            );
        }
    })
    .await
    .unwrap();
    let dripped = dripping.await.unwrap();
    assert!(
        dripped < Duration::from_secs(5),
        "a client sending a byte at a time is cut off too (after {dripped:?})"
    );

    // Eight idle connections fill the places: a ninth client is answered only once the
    // header timeout has closed one of them.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(&address).unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let response = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "the ninth waited for a place: {waited:?}"
    );
}
