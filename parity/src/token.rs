//! Parity of a token classifier: token ids and character offsets, per-token logits alone
//! and batched, the pipeline's JSON for every recorded `aggregation_strategy` and
//! `ignore_labels` (entity lists identical: labels, offsets, words; scores within 1e-4),
//! and entity-level F1 over the test split against PyTorch's (a distilled student's also
//! against its teacher's).

use std::collections::HashSet;

use anyhow::{Context, Result};
use modelcrate_core::pipeline;
use modelcrate_runtime::AggregationStrategy;
use modelcrate_schema::{Agreement, Drift, ParityMetric, ParitySummary};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Checked, Figures, Rule, check_token_ids};
use crate::recorded;
use crate::test_split::{Span, Tagged};
use crate::through::Through;

const LOGIT_BOUND: f64 = 1e-4;
const SCORE_BOUND: f64 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    checkpoint_sha256: String,
    cases: Vec<Case>,
    pipeline_calls: Map<String, Value>,
    batch: Batch,
    test_split: TestSplit,
    /// A distilled student's reference carries its teacher's test metric.
    #[serde(default)]
    teacher: Option<Teacher>,
}

#[derive(Deserialize)]
struct Teacher {
    test_split: TeacherTestSplit,
}

#[derive(Deserialize)]
struct TeacherTestSplit {
    examples: usize,
    entity_f1: f64,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    text: String,
    input_ids: Vec<u32>,
    offsets: Vec<(usize, usize)>,
    logits: Vec<Vec<f64>>,
    pipeline: Map<String, Value>,
}

#[derive(Deserialize)]
struct Batch {
    pipeline: Map<String, Value>,
}

#[derive(Deserialize)]
struct TestSplit {
    examples: usize,
    entity_f1: f64,
    /// The pipeline's simple-aggregated answer per test sentence.
    entities: Vec<Value>,
}

/// (type, start, end) of each entity in a grouped answer.
fn spans(answer: &Value) -> HashSet<Span> {
    answer
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entity| {
            Some(Span {
                kind: entity.get("entity_group")?.as_str()?.to_string(),
                start: usize::try_from(entity.get("start")?.as_u64()?).ok()?,
                end: usize::try_from(entity.get("end")?.as_u64()?).ok()?,
            })
        })
        .collect()
}

/// Entity-level F1: an entity counts only with its exact type and span (as `release_notes.entity_f1`).
fn entity_f1(predicted: &[HashSet<Span>], gold: &[HashSet<Span>]) -> f64 {
    let found: usize = predicted.iter().zip(gold).map(|(p, g)| p.intersection(g).count()).sum();
    let predicted_count: usize = predicted.iter().map(HashSet::len).sum();
    let gold_count: usize = gold.iter().map(HashSet::len).sum();
    let precision = if predicted_count == 0 {
        0.0
    } else {
        found as f64 / predicted_count as f64
    };
    let recall = if gold_count == 0 {
        0.0
    } else {
        found as f64 / gold_count as f64
    };
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// Checks the token classifier `through` leads to against the golden `reference.json`
/// text and the test split.
pub(super) async fn check(
    through: &Through,
    reference: &str,
    test: &[Tagged],
    figures: &mut Figures,
) -> Result<Checked> {
    let reference: Reference = serde_json::from_str(reference).context("it is not what `cargo xtask golden` writes")?;
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();

    let golden_ids = reference.cases.iter().map(|c| (c.id.as_str(), c.input_ids.as_slice()));
    let id_mismatches = check_token_ids(through, &texts, golden_ids, figures).await?;
    let encodings = through.encode(&texts).await?;
    let offset_mismatches: Vec<&str> = reference
        .cases
        .iter()
        .zip(&encodings)
        .filter(|(case, encoding)| case.offsets.as_slice() != encoding.get_offsets())
        .map(|(case, _)| case.id.as_str())
        .collect();
    figures.row(
        Rule::Every,
        "character offsets identical",
        format!("{}/{} inputs", texts.len() - offset_mismatches.len(), texts.len()),
        "all",
        offset_mismatches.is_empty(),
    );

    // Max |difference| over every token's logits; infinite when the shapes differ.
    let difference = |rust: &[Vec<f32>], python: &[Vec<f64>]| -> f64 {
        if rust.len() != python.len() {
            return f64::INFINITY;
        }
        rust.iter()
            .zip(python)
            .flat_map(|(r, p)| {
                let width = if r.len() == p.len() { 0.0 } else { f64::INFINITY };
                r.iter().zip(p).map(move |(a, b)| (f64::from(*a) - b).abs() + width)
            })
            .fold(0.0, f64::max)
    };
    // The largest per-token logit difference over the golden inputs, answers in case order.
    let worst = |answers: &[ndarray::Array2<f32>]| {
        reference
            .cases
            .iter()
            .zip(answers)
            .map(|(case, rows)| {
                let rows: Vec<Vec<f32>> = rows.rows().into_iter().map(|row| row.to_vec()).collect();
                difference(&rows, &case.logits)
            })
            .fold(0.0, f64::max)
    };
    let alone_max = worst(&through.token_logits_each(&texts).await?);
    figures.row(
        Rule::Exact,
        "max |logit diff| per token, each input alone",
        format!("{alone_max:.2e}"),
        "1e-4",
        alone_max <= LOGIT_BOUND,
    );
    let batch_max = worst(&through.token_logits(&texts).await?);
    let merged_max = worst(&through.token_logits_at_once(&texts).await?);
    for (what, found) in [
        (
            format!(
                "all inputs in one request (length-sorted runs of up to {})",
                through.batch_size().min(texts.len())
            ),
            batch_max,
        ),
        (
            "each input a request, all at once (merged by the engine)".to_string(),
            merged_max,
        ),
    ] {
        figures.row(
            Rule::Exact,
            &format!("max |logit diff| per token, {what}"),
            format!("{found:.2e}"),
            "1e-4",
            found <= LOGIT_BOUND,
        );
    }

    let mut pipeline_max = 0.0f64;
    let mut pipeline_errors = Vec::new();
    let mut simple_agree = 0;
    for (key, call) in &reference.pipeline_calls {
        let (strategy, ignore_labels) = recorded::entities(call)?;
        let found = through.entities(&texts, strategy, ignore_labels).await?;
        for (case, entities) in reference.cases.iter().zip(&found) {
            let rust = pipeline::entities(std::slice::from_ref(entities), true);
            let python = case
                .pipeline
                .get(key)
                .with_context(|| format!("case {} has no pipeline output `{key}`", case.id))?;
            match pipeline::difference(&rust, python, &format!("{} {key}", case.id)) {
                Ok(difference) => {
                    pipeline_max = pipeline_max.max(difference);
                    simple_agree += usize::from(key == "simple");
                }
                Err(problem) => pipeline_errors.push(problem),
            }
        }
        if let Some(python) = reference.batch.pipeline.get(key) {
            let rust = pipeline::entities(&found, false);
            match pipeline::difference(&rust, python, &format!("batch {key}")) {
                Ok(difference) => pipeline_max = pipeline_max.max(difference),
                Err(problem) => pipeline_errors.push(problem),
            }
        }
    }
    let calls = reference.pipeline_calls.len();
    figures.row(
        Rule::Exact,
        &format!(
            "pipeline JSON, {calls} strategy/ignore sets × {} inputs + {} batches",
            texts.len(),
            reference.batch.pipeline.len()
        ),
        if pipeline_errors.is_empty() {
            format!("identical entities, max |score diff| {pipeline_max:.2e}")
        } else {
            format!("{} differ, first: {}", pipeline_errors.len(), pipeline_errors[0])
        },
        "same entities, 1e-4",
        pipeline_errors.is_empty() && pipeline_max <= SCORE_BOUND,
    );

    let test_texts: Vec<&str> = test.iter().map(|row| row.text.as_str()).collect();
    let spans_of = |found: &[Vec<modelcrate_runtime::Entity>]| -> Vec<HashSet<Span>> {
        found
            .iter()
            .map(|entities| spans(&pipeline::entities(std::slice::from_ref(entities), true)))
            .collect()
    };
    let rust_spans = spans_of(
        &through
            .entities_in_requests(&test_texts, AggregationStrategy::Simple)
            .await?,
    );
    let gold: Vec<HashSet<Span>> = test.iter().map(|row| row.entities.iter().cloned().collect()).collect();
    let python_spans: Vec<HashSet<Span>> = reference.test_split.entities.iter().map(spans).collect();
    let rust_f1 = entity_f1(&rust_spans, &gold);
    let pytorch_f1 = reference.test_split.entity_f1;
    let agreement = rust_spans.iter().zip(&python_spans).filter(|(r, p)| r == p).count();
    figures.test_metric(
        &format!("test split entity F1 ({} sentences)", test.len()),
        rust_f1,
        pytorch_f1,
        (rust_f1 - pytorch_f1).abs() < 1e-9,
        test.len() == reference.test_split.examples && python_spans.len() == test.len(),
    );
    if figures.int8() {
        let alone = spans_of(&through.entities_each(&test_texts, AggregationStrategy::Simple).await?);
        figures.alone_metric("entity F1", entity_f1(&alone, &gold), pytorch_f1);
    }
    if let Some(teacher) = &reference.teacher {
        figures.teacher_metric(
            "entity F1",
            rust_f1,
            teacher.test_split.entity_f1,
            test.len() == teacher.test_split.examples,
        );
    }
    figures.row(
        Rule::Every,
        "test split sentences with PyTorch's entities",
        format!("{agreement}/{}", test.len()),
        "reported",
        true,
    );

    Ok(Checked {
        checkpoint: reference.checkpoint_sha256.clone(),
        metric: ParityMetric {
            name: "entity_f1".into(),
            value: rust_f1,
            pytorch: pytorch_f1,
            teacher: reference.teacher.as_ref().map(|teacher| teacher.test_split.entity_f1),
        },
        summary: ParitySummary {
            drift: Drift::new("max |Δlogit|", alone_max),
            golden: Agreement::new("entities", simple_agree, texts.len()),
            test_agreement: Agreement::new("entities", agreement, test.len()),
        },
        details: json!({
            "token_ids": {"inputs": texts.len(), "mismatched": id_mismatches},
            "offsets": {"inputs": texts.len(), "mismatched": offset_mismatches},
            "logits_max_abs_diff": {"alone": alone_max, "batched": batch_max, "merged": merged_max, "bound": LOGIT_BOUND},
            "pipeline_json": {"max_abs_score_diff": pipeline_max, "bound": SCORE_BOUND, "differences": pipeline_errors},
            "test_split": {
                "examples": test.len(),
                "rust_entity_f1": rust_f1,
                "pytorch_entity_f1": pytorch_f1,
                "sentences_agreeing": agreement,
                "teacher_entity_f1": reference.teacher.as_ref().map(|teacher| teacher.test_split.entity_f1),
            },
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(kind: &str, start: usize, end: usize) -> Span {
        Span {
            kind: kind.into(),
            start,
            end,
        }
    }

    #[test]
    fn f1_counts_only_exact_type_and_span() {
        let gold = vec![HashSet::from([span("PRODUCT", 0, 5), span("VERSION", 6, 10)])];
        let predicted = vec![HashSet::from([span("PRODUCT", 0, 5), span("VERSION", 6, 9)])];
        // precision 1/2, recall 1/2
        assert!((entity_f1(&predicted, &gold) - 0.5).abs() < 1e-12);
        assert_eq!(entity_f1(&[HashSet::new()], &gold), 0.0);
    }

    #[test]
    fn spans_are_read_from_a_grouped_answer() {
        let answer = json!([{"entity_group": "VERSION", "score": 0.9, "word": "v2", "start": 3, "end": 5}]);
        assert_eq!(spans(&answer), HashSet::from([span("VERSION", 3, 5)]));
    }
}
