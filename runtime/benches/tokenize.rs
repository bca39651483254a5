//! Tokenization with the exported news-topic tokenizer: one article, and a batch of 32
//! test-split articles into padded tensors. Needs `artifacts/news-topic` (`cargo xtask
//! all` or `cargo xtask export`); without it the benchmarks are skipped with a message.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modelcrate_runtime::text::TextEncoder;

mod common;

use common::artifacts;

/// The first `count` test-split articles of news-topic.
fn articles(count: usize) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(artifacts().join("news-topic/data/test.jsonl")).ok()?;
    text.lines()
        .take(count)
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).ok()?;
            row["text"].as_str().map(str::to_string)
        })
        .collect()
}

fn tokenize(c: &mut Criterion) {
    let encoder = TextEncoder::from_file(&artifacts().join("news-topic/onnx/tokenizer.json"), 128);
    let (Ok(encoder), Some(texts)) = (encoder, articles(32)) else {
        eprintln!("skipped: no artifacts/news-topic (run `cargo xtask all` first)");
        return;
    };
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    c.bench_function("tokenize 1 article (truncated to 128)", |b| {
        b.iter(|| black_box(encoder.encode(black_box(&texts[..1]))))
    });
    c.bench_function("tokenize and pad 32 articles", |b| {
        b.iter(|| black_box(encoder.encode(black_box(&texts))))
    });
}

criterion_group!(benches, tokenize);
criterion_main!(benches);
