//! The batching engine seen through HTTP: concurrent requests merged and answered as if
//! alone, merging by length, a full queue's 429 and a request timeout's 504.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_answer() {
    let base = start_only(&["news-topic"]).await;
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
