//! NER post-processing after `session.run`, per batch of 32 release-ner test-split texts:
//! softmax per token, the pipeline's pre-entities (character offsets, subword marks,
//! decoded words) and aggregation, with strategy `simple` (the server's default) and
//! `first`. The logits are built from each text's gold entities (a clear BIO label per
//! token), so the entity runs are the ones the model finds. Needs `artifacts/release-ner`
//! (`cargo xtask all` or `cargo xtask export`); without it the benchmarks are skipped with
//! a message.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modelcrate_runtime::AggregationStrategy;
use modelcrate_runtime::text::TextEncoder;
use modelcrate_runtime::token_classification::{DEFAULT_IGNORE_LABELS, Vocabulary, entities};
use ndarray::Array2;
use serde_json::Value;
use tokenizers::Encoding;

mod common;

use common::artifacts;

const BATCH: usize = 32;

/// The model's labels in id order, from its `config.json` (`id2label`).
fn labels(config: &Value) -> Option<Vec<&'static str>> {
    let id2label = config["id2label"].as_object()?;
    (0..id2label.len())
        .map(|id| {
            let label = id2label.get(&id.to_string())?.as_str()?;
            Some(&*Box::leak(label.to_string().into_boxed_str()))
        })
        .collect()
}

/// One gold entity of a test-split row: its type and character span.
struct Gold {
    kind: String,
    start: usize,
    end: usize,
}

/// The first `count` test-split rows of release-ner: text and gold entities.
fn rows(count: usize) -> Option<Vec<(String, Vec<Gold>)>> {
    let text = std::fs::read_to_string(artifacts().join("release-ner/data/test.jsonl")).ok()?;
    text.lines()
        .take(count)
        .map(|line| {
            let row: Value = serde_json::from_str(line).ok()?;
            let gold = row["entities"]
                .as_array()?
                .iter()
                .map(|entity| {
                    Some(Gold {
                        kind: entity["type"].as_str()?.to_string(),
                        start: usize::try_from(entity["start"].as_u64()?).ok()?,
                        end: usize::try_from(entity["end"].as_u64()?).ok()?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Some((row["text"].as_str()?.to_string(), gold))
        })
        .collect()
}

/// Logits `[tokens, labels]` that put 6.0 on each token's gold BIO label and 0 elsewhere:
/// `B-` for the first token inside an entity, `I-` for the next ones, `O` outside.
fn gold_logits(encoding: &Encoding, gold: &[Gold], labels: &[&str]) -> Array2<f32> {
    let id = |label: &str| labels.iter().position(|l| *l == label).unwrap_or(0);
    let mut logits = Array2::zeros((encoding.len(), labels.len()));
    let mut previous = None;
    for (token, &(start, end)) in encoding.get_offsets().iter().enumerate() {
        let inside = (start < end)
            .then(|| gold.iter().position(|g| g.start <= start && end <= g.end))
            .flatten();
        let label = match inside {
            Some(entity) if previous == Some(entity) => id(&format!("I-{}", gold[entity].kind)),
            Some(entity) => id(&format!("B-{}", gold[entity].kind)),
            None => id("O"),
        };
        logits[[token, label]] = 6.0;
        previous = inside;
    }
    logits
}

fn aggregation(c: &mut Criterion) {
    let dir = artifacts().join("release-ner/onnx");
    let config = std::fs::read_to_string(dir.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok());
    let encoder = TextEncoder::from_file(&dir.join("tokenizer.json"), 128);
    let (Some(labels), Ok(encoder), Some(rows)) = (config.as_ref().and_then(labels), encoder, rows(BATCH)) else {
        eprintln!("skipped: no artifacts/release-ner (run `cargo xtask all` first)");
        return;
    };
    let texts: Vec<&str> = rows.iter().map(|(text, _)| text.as_str()).collect();
    let Ok(encodings) = encoder.char_encodings(&texts) else {
        eprintln!("skipped: the release-ner tokenizer refused a test-split text");
        return;
    };
    let logits: Vec<Array2<f32>> = encodings
        .iter()
        .zip(&rows)
        .map(|(encoding, (_, gold))| gold_logits(encoding, gold, &labels))
        .collect();
    let vocabulary = Vocabulary::new(encoder.tokenizer());
    // The entities found in the 32 texts with `strategy`.
    let aggregate = |strategy| -> modelcrate_runtime::Result<usize> {
        let mut found = 0;
        for ((text, encoding), logits) in texts.iter().zip(&encodings).zip(&logits) {
            found += entities(
                text,
                encoding,
                black_box(logits),
                &labels,
                strategy,
                &DEFAULT_IGNORE_LABELS,
                &vocabulary,
            )?
            .len();
        }
        Ok(found)
    };
    // Once before timing: aggregation must succeed; say what it finds against the gold.
    let gold: usize = rows.iter().map(|(_, gold)| gold.len()).sum();
    match aggregate(AggregationStrategy::Simple) {
        Ok(found) => eprintln!("{found} entities found in {BATCH} texts with {gold} gold entities"),
        Err(error) => {
            eprintln!("skipped: aggregation failed: {error}");
            return;
        }
    }
    for strategy in [AggregationStrategy::Simple, AggregationStrategy::First] {
        let name = format!("NER aggregation `{}`, 32 release-ner texts", strategy.as_str());
        c.bench_function(&name, |b| b.iter(|| black_box(aggregate(strategy).ok())));
    }
}

criterion_group!(benches, aggregation);
criterion_main!(benches);
