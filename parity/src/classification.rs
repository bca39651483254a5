//! Parity of a text classifier: token ids, logits, top labels, the pipeline's JSON for
//! every recorded parameter set, and accuracy over the test split (for a multi-label
//! model: exact match of the label set scoring at least 0.5 after the sigmoid).

use anyhow::{Context, Result};
use modelcrate_core::pipeline;
use modelcrate_runtime::classification::best;
use modelcrate_runtime::{ModelInfo, ProblemType};
use modelcrate_schema::{Agreement, Drift, ParityMetric, ParitySummary};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Checked, Figures, Rule, check_token_ids, max_abs_difference};
use crate::recorded;
use crate::test_split::TestRow;
use crate::through::Through;

const LOGIT_BOUND: f64 = 1e-4;
const SCORE_BOUND: f64 = 1e-4;

#[derive(Deserialize)]
struct Reference {
    checkpoint_sha256: String,
    cases: Vec<Case>,
    pipeline_calls: serde_json::Map<String, Value>,
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
    accuracy: f64,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    text: String,
    input_ids: Vec<u32>,
    logits: Vec<f64>,
    /// A SetFit model's `predict_proba` (its default scores).
    #[serde(default)]
    probabilities: Option<Vec<f64>>,
    pipeline: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct Batch {
    pipeline: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct TestSplit {
    examples: usize,
    accuracy: f64,
    /// A label id per example, or for a multi-label model the list of ids that apply.
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Prediction {
    One(usize),
    Set(Vec<usize>),
}

impl Prediction {
    fn ids(&self) -> Vec<usize> {
        match self {
            Self::One(id) => vec![*id],
            Self::Set(ids) => ids.clone(),
        }
    }
}

/// What the model predicts from one row of scores: the best label, or for a multi-label
/// model every label whose sigmoid score is at least 0.5 (sorted ids).
fn predicted(scores: &[f32], multi_label: bool) -> Vec<usize> {
    if multi_label {
        (0..scores.len()).filter(|&id| scores[id] >= 0.5).collect()
    } else {
        vec![best(scores).id]
    }
}

/// Checks the classifier described by `info` against the golden `reference.json` text and the test split.
pub(super) async fn check(
    through: &Through,
    info: &ModelInfo,
    reference: &str,
    test: &[TestRow],
    figures: &mut Figures,
) -> Result<Checked> {
    let reference: Reference = serde_json::from_str(reference).context("it is not what `cargo xtask golden` writes")?;
    let reference = &reference;
    let labels = info.labels;
    let texts: Vec<&str> = reference.cases.iter().map(|c| c.text.as_str()).collect();

    let golden_ids = reference.cases.iter().map(|c| (c.id.as_str(), c.input_ids.as_slice()));
    let id_mismatches = check_token_ids(through, &texts, golden_ids, figures).await?;

    let mut alone_max = 0.0f64;
    let mut top_mismatches = Vec::new();
    let alone = through.classify_each(&texts).await?;
    for (case, row) in reference.cases.iter().zip(&alone.logits) {
        alone_max = alone_max.max(max_abs_difference(row, &case.logits));
        let python: Vec<f32> = case.logits.iter().map(|&l| l as f32).collect();
        if best(row).id != best(&python).id {
            top_mismatches.push(case.id.as_str());
        }
    }
    figures.row(
        Rule::Exact,
        "max |logit diff|, each input alone",
        format!("{alone_max:.2e}"),
        "1e-4",
        alone_max <= LOGIT_BOUND,
    );

    // The largest logit difference over the golden inputs of answers in case order.
    let worst = |answers: &[Vec<f32>]| {
        reference
            .cases
            .iter()
            .zip(answers)
            .map(|(case, row)| max_abs_difference(row, &case.logits))
            .fold(0.0, f64::max)
    };
    let batch_max = worst(&through.classify(&texts, None).await?.logits);
    let merged_max = worst(&through.classify_at_once(&texts).await?.logits);
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
            &format!("max |logit diff|, {what}"),
            format!("{found:.2e}"),
            "1e-4",
            found <= LOGIT_BOUND,
        );
    }
    figures.row(
        Rule::Exact,
        "top label identical",
        format!("{}/{} inputs", texts.len() - top_mismatches.len(), texts.len()),
        "all",
        top_mismatches.is_empty(),
    );

    let mut pipeline_max = 0.0f64;
    let mut pipeline_errors = Vec::new();
    for (key, call) in &reference.pipeline_calls {
        let (top_k, function) = recorded::classification(call)?;
        let scores = through.classify(&texts, function).await?.scores;
        for (case, row) in reference.cases.iter().zip(&scores) {
            let rust = pipeline::answer(labels, std::slice::from_ref(row), top_k, true);
            let python = case
                .pipeline
                .get(key)
                .with_context(|| format!("case {} has no pipeline output `{key}`", case.id))?;
            match pipeline::difference(&rust, python, &format!("{} {key}", case.id)) {
                Ok(difference) => pipeline_max = pipeline_max.max(difference),
                Err(problem) => pipeline_errors.push(problem),
            }
        }
        let rust = pipeline::answer(labels, &scores, top_k, false);
        let python = reference
            .batch
            .pipeline
            .get(key)
            .with_context(|| format!("the batch has no pipeline output `{key}`"))?;
        match pipeline::difference(&rust, python, &format!("batch {key}")) {
            Ok(difference) => pipeline_max = pipeline_max.max(difference),
            Err(problem) => pipeline_errors.push(problem),
        }
    }
    let calls = reference.pipeline_calls.len();
    figures.row(
        Rule::Exact,
        &format!("pipeline JSON, {calls} parameter sets × {} inputs + batch", texts.len()),
        if pipeline_errors.is_empty() {
            format!("max |score diff| {pipeline_max:.2e}")
        } else {
            format!("{} differ, first: {}", pipeline_errors.len(), pipeline_errors[0])
        },
        "same labels, 1e-4",
        pipeline_errors.is_empty() && pipeline_max <= SCORE_BOUND,
    );

    // SetFit: the default scores (softmax of the head's logits) against `predict_proba`.
    let mut probability_max = None;
    if reference.cases.iter().any(|case| case.probabilities.is_some()) {
        let scores = through.classify(&texts, None).await?.scores;
        let mut worst = 0.0f64;
        for (case, row) in reference.cases.iter().zip(&scores) {
            let expected = case
                .probabilities
                .as_ref()
                .with_context(|| format!("case {} has no probabilities", case.id))?;
            worst = worst.max(max_abs_difference(row, expected));
        }
        figures.row(
            Rule::Exact,
            "max |probability diff| vs SetFit predict_proba, padded batches",
            format!("{worst:.2e}"),
            "1e-4",
            worst <= SCORE_BOUND,
        );
        probability_max = Some(worst);
    }

    // Multi-label: the sigmoid scores (the model's default function) decide each label.
    let multi_label = info.problem_type == Some(ProblemType::MultiLabel);
    let test_texts: Vec<&str> = test.iter().map(|row| row.text.as_str()).collect();
    // The predictions of the test split's scores, and their accuracy.
    let accuracy_of = |scores: &[Vec<f32>]| -> Result<(Vec<Vec<usize>>, f64)> {
        let predictions: Vec<Vec<usize>> = scores.iter().map(|row| predicted(row, multi_label)).collect();
        let mut correct = 0;
        for (prediction, row) in predictions.iter().zip(test) {
            correct += usize::from(*prediction == row.label_ids(labels)?);
        }
        Ok((predictions, correct as f64 / test.len().max(1) as f64))
    };
    let (rust_predictions, rust_accuracy) = accuracy_of(&through.classify_in_requests(&test_texts).await?.scores)?;
    let agreement = rust_predictions
        .iter()
        .zip(&reference.test_split.predictions)
        .filter(|(r, p)| **r == p.ids())
        .count();
    let metric_name = if multi_label { "exact_match" } else { "accuracy" };
    figures.test_metric(
        &format!("test split {} ({} examples)", metric_name.replace('_', "-"), test.len()),
        rust_accuracy,
        reference.test_split.accuracy,
        (rust_accuracy - reference.test_split.accuracy).abs() < 1e-9,
        test.len() == reference.test_split.examples,
    );
    if figures.int8() {
        let (_, alone) = accuracy_of(&through.classify_each(&test_texts).await?.scores)?;
        figures.alone_metric(&metric_name.replace('_', "-"), alone, reference.test_split.accuracy);
    }
    if let Some(teacher) = &reference.teacher {
        figures.teacher_metric(
            &metric_name.replace('_', "-"),
            rust_accuracy,
            teacher.test_split.accuracy,
            test.len() == teacher.test_split.examples,
        );
    }
    figures.row(
        Rule::Every,
        if multi_label {
            "test split label-set agreement"
        } else {
            "test split top-1 agreement"
        },
        format!("{agreement}/{}", test.len()),
        "reported",
        true,
    );

    let golden_agree = texts.len() - top_mismatches.len();
    let details = json!({
        "token_ids": {"inputs": texts.len(), "mismatched": id_mismatches},
        "logits_max_abs_diff": {"alone": alone_max, "batched": batch_max, "merged": merged_max, "bound": LOGIT_BOUND},
        "top_label": {"inputs": texts.len(), "mismatched": top_mismatches},
        "pipeline_json": {"max_abs_score_diff": pipeline_max, "bound": SCORE_BOUND, "differences": pipeline_errors},
        "setfit_probabilities_max_abs_diff": probability_max,
        "test_split": {
            "examples": test.len(),
            "rust_accuracy": rust_accuracy,
            "pytorch_accuracy": reference.test_split.accuracy,
            "teacher_accuracy": reference.teacher.as_ref().map(|teacher| teacher.test_split.accuracy),
            "agreement": agreement,
        },
    });
    Ok(Checked {
        checkpoint: reference.checkpoint_sha256.clone(),
        metric: ParityMetric {
            name: metric_name.into(),
            value: rust_accuracy,
            pytorch: reference.test_split.accuracy,
            teacher: reference.teacher.as_ref().map(|teacher| teacher.test_split.accuracy),
        },
        summary: ParitySummary {
            drift: Drift::new("max |Δlogit|", alone_max),
            golden: Agreement::new("top-1", golden_agree, texts.len()),
            test_agreement: Agreement::new(if multi_label { "label set" } else { "top-1" }, agreement, test.len()),
        },
        details,
    })
}
