//! Parity of an extractive question-answering model: every window's token ids, its start
//! and end logits (each question alone, all in one request, each a request all at once),
//! the pipeline's answers for every recorded call and a case's own parameters (the same
//! spans, offsets and texts; scores within 1e-4), all questions in one pipeline call, and
//! SQuAD's exact match and F1 over the test split (each question's best answer, "no
//! answer" allowed) against PyTorch's: equal for an exact variant, F1 at most 1.0 point
//! below for INT8.

use anyhow::{Context, Result};
use modelcrate_core::{Answers, pipeline};
use modelcrate_runtime::AnswerOptions;
use modelcrate_runtime::question_answering::SpanLogits;
use modelcrate_schema::{Agreement, Drift, ParityMetric, ParitySummary};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Checked, Figures, Rule};
use crate::recorded;
use crate::test_split::QuestionRow;
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
}

#[derive(Deserialize)]
struct Case {
    id: String,
    question: String,
    context: String,
    /// The case's own pipeline parameters, recorded under `own`.
    #[serde(default)]
    parameters: Option<Value>,
    windows: Vec<Window>,
    pipeline: Map<String, Value>,
}

#[derive(Deserialize)]
struct Window {
    input_ids: Vec<u32>,
    start_logits: Vec<f64>,
    end_logits: Vec<f64>,
}

#[derive(Deserialize)]
struct Batch {
    pipeline: Value,
}

#[derive(Deserialize)]
struct TestSplit {
    examples: usize,
    /// The pipeline's best answer (no answer allowed) per test question.
    answers: Vec<String>,
}

/// SQuAD's normalisation: lower case, ASCII punctuation removed, the articles a, an and
/// the dropped, words split on white space.
fn normalized_words(text: &str) -> Vec<String> {
    let lowered: String = text
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    lowered
        .split_whitespace()
        .filter(|word| !matches!(*word, "a" | "an" | "the"))
        .map(str::to_string)
        .collect()
}

/// SQuAD 2.0's F1 of two answers' words; an empty answer scores 1 only against another.
fn f1(prediction: &str, truth: &str) -> f64 {
    let (predicted, true_words) = (normalized_words(prediction), normalized_words(truth));
    if predicted.is_empty() || true_words.is_empty() {
        return f64::from(u8::from(predicted == true_words));
    }
    let mut left = true_words.clone();
    let same = predicted
        .iter()
        .filter(|word| match left.iter().position(|w| w == *word) {
            Some(at) => {
                left.swap_remove(at);
                true
            }
            None => false,
        })
        .count();
    if same == 0 {
        return 0.0;
    }
    let (precision, recall) = (
        same as f64 / predicted.len() as f64,
        same as f64 / true_words.len() as f64,
    );
    2.0 * precision * recall / (precision + recall)
}

/// Exact match and F1 of `predictions` over `rows`, each against its best gold answer
/// ("" when the question has none).
fn squad(predictions: &[String], rows: &[QuestionRow]) -> (f64, f64) {
    let (mut exact, mut f1_sum) = (0.0, 0.0);
    for (prediction, row) in predictions.iter().zip(rows) {
        let truths: Vec<&str> = if row.answers.is_empty() {
            vec![""]
        } else {
            row.answers.iter().map(|answer| answer.text.as_str()).collect()
        };
        exact += truths
            .iter()
            .map(|truth| f64::from(u8::from(normalized_words(prediction) == normalized_words(truth))))
            .fold(0.0, f64::max);
        f1_sum += truths.iter().map(|truth| f1(prediction, truth)).fold(0.0, f64::max);
    }
    let count = rows.len().max(1) as f64;
    (exact / count, f1_sum / count)
}

/// Max |difference| of one question's windows' logits against Python's; infinite when
/// the windows or their lengths differ.
fn logit_difference(rust: &[SpanLogits], python: &[Window]) -> f64 {
    if rust.len() != python.len() {
        return f64::INFINITY;
    }
    rust.iter()
        .zip(python)
        .map(|(r, p)| {
            super::max_abs_difference(&r.start, &p.start_logits).max(super::max_abs_difference(&r.end, &p.end_logits))
        })
        .fold(0.0, f64::max)
}

/// Checks the question-answering model `through` leads to against the golden
/// `reference.json` text and the test split.
pub(super) async fn check(
    through: &Through,
    reference: &str,
    test: &[QuestionRow],
    figures: &mut Figures,
) -> Result<Checked> {
    let reference: Reference = serde_json::from_str(reference).context("it is not what `cargo xtask golden` writes")?;
    let pairs: Vec<(&str, &str)> = reference
        .cases
        .iter()
        .map(|case| (case.question.as_str(), case.context.as_str()))
        .collect();
    let defaults = AnswerOptions::default();

    let alone = through.answer_each(&pairs, defaults).await?;
    let id_mismatches: Vec<&str> = reference
        .cases
        .iter()
        .zip(&alone.window_ids)
        .filter(|(case, ids)| {
            case.windows.len() != ids.len() || case.windows.iter().zip(*ids).any(|(w, rust)| &w.input_ids != rust)
        })
        .map(|(case, _)| case.id.as_str())
        .collect();
    let windows: usize = reference.cases.iter().map(|case| case.windows.len()).sum();
    figures.row(
        Rule::Every,
        "windows and their token ids identical",
        format!(
            "{}/{} questions ({windows} windows)",
            pairs.len() - id_mismatches.len(),
            pairs.len()
        ),
        "all",
        id_mismatches.is_empty(),
    );
    let worst = |answers: &Answers| {
        reference
            .cases
            .iter()
            .zip(&answers.logits)
            .map(|(case, logits)| logit_difference(logits, &case.windows))
            .fold(0.0, f64::max)
    };
    let alone_max = worst(&alone);
    figures.row(
        Rule::Exact,
        "max |start/end logit diff| per token, each question alone",
        format!("{alone_max:.2e}"),
        "1e-4",
        alone_max <= LOGIT_BOUND,
    );
    let together = through.answer(&pairs, defaults).await?;
    let merged = through.answer_at_once(&pairs, defaults).await?;
    for (what, answers) in [
        ("all questions in one request", &together),
        ("each question a request, all at once (merged by the engine)", &merged),
    ] {
        let found = worst(answers);
        figures.row(
            Rule::Exact,
            &format!("max |start/end logit diff| per token, {what}"),
            format!("{found:.2e}"),
            "1e-4",
            found <= LOGIT_BOUND,
        );
    }

    // The span selection alone: PyTorch's own logits through the runtime's post-processing
    // give the pipeline's answers (scores within f32 rounding), whatever the variant.
    let mut selection_errors = Vec::new();
    let mut selection_max = 0.0f64;
    for case in &reference.cases {
        let windows = through.model().windows(&case.question, &case.context, &defaults)?;
        let logits: Vec<SpanLogits> = case
            .windows
            .iter()
            .map(|window| SpanLogits {
                start: window.start_logits.iter().map(|&l| l as f32).collect(),
                end: window.end_logits.iter().map(|&l| l as f32).collect(),
            })
            .collect();
        let python = case
            .pipeline
            .get("default")
            .with_context(|| format!("case {} has no pipeline answer `default`", case.id))?;
        match through.model().answers_of(&case.context, &windows, &logits, &defaults) {
            Ok(found) => match pipeline::difference(&pipeline::answers(&[found]), python, &case.id) {
                Ok(difference) => selection_max = selection_max.max(difference),
                Err(problem) => selection_errors.push(problem),
            },
            Err(error) => selection_errors.push(format!("{}: {error}", case.id)),
        }
    }
    figures.row(
        Rule::Every,
        "span selection on PyTorch's logits vs the pipeline's answers",
        if selection_errors.is_empty() {
            format!("identical spans, max |score diff| {selection_max:.2e}")
        } else {
            format!("{} differ, first: {}", selection_errors.len(), selection_errors[0])
        },
        "same spans, 1e-6",
        selection_errors.is_empty() && selection_max <= 1e-6,
    );

    // Every recorded call, and each case's own parameters, one question a request.
    let mut pipeline_max = 0.0f64;
    let mut pipeline_errors = Vec::new();
    let mut default_agree = 0;
    let mut compared = 0;
    let mut compare =
        |rust: &Value, python: &Value, place: String, default: bool| match pipeline::difference(rust, python, &place) {
            Ok(difference) => {
                pipeline_max = pipeline_max.max(difference);
                default_agree += usize::from(default);
            }
            Err(problem) => pipeline_errors.push(problem),
        };
    for (key, call) in &reference.pipeline_calls {
        let options = recorded::answer_options(call)?;
        let found = through.answer_each(&pairs, options).await?;
        for (case, answers) in reference.cases.iter().zip(&found.answers) {
            let python = case
                .pipeline
                .get(key)
                .with_context(|| format!("case {} has no pipeline answer `{key}`", case.id))?;
            compared += 1;
            let rust = pipeline::answers(std::slice::from_ref(answers));
            compare(&rust, python, format!("{} {key}", case.id), key == "default");
        }
    }
    for case in &reference.cases {
        let Some(parameters) = &case.parameters else {
            continue;
        };
        let options = recorded::answer_options(parameters)?;
        let found = through.answer(&[(&case.question, &case.context)], options).await?;
        let python = case
            .pipeline
            .get("own")
            .with_context(|| format!("case {} has parameters but no pipeline answer `own`", case.id))?;
        compared += 1;
        compare(
            &pipeline::answers(&found.answers),
            python,
            format!("{} own", case.id),
            false,
        );
    }
    compared += 1;
    compare(
        &pipeline::answers(&together.answers),
        &reference.batch.pipeline,
        "all questions in one call".into(),
        false,
    );
    figures.row(
        Rule::Exact,
        &format!(
            "pipeline answers, {} calls × {} questions, own parameters, one call of all ({compared} answers)",
            reference.pipeline_calls.len(),
            pairs.len()
        ),
        if pipeline_errors.is_empty() {
            format!("identical spans, max |score diff| {pipeline_max:.2e}")
        } else {
            format!("{} differ, first: {}", pipeline_errors.len(), pipeline_errors[0])
        },
        "same spans and offsets, 1e-4",
        pipeline_errors.is_empty() && pipeline_max <= SCORE_BOUND,
    );

    // The test split: each question's best answer, "no answer" allowed.
    let impossible = AnswerOptions {
        handle_impossible_answer: true,
        ..AnswerOptions::default()
    };
    let test_pairs: Vec<(&str, &str)> = test
        .iter()
        .map(|row| (row.question.as_str(), row.context.as_str()))
        .collect();
    let best = |answers: &Answers| -> Vec<String> {
        answers
            .answers
            .iter()
            .map(|found| found.first().map(|a| a.answer.clone()).unwrap_or_default())
            .collect()
    };
    let rust_answers = best(&through.answer_in_requests(&test_pairs, impossible).await?);
    let python_answers = &reference.test_split.answers;
    let same_split = test.len() == reference.test_split.examples && python_answers.len() == test.len();
    let (rust_exact, rust_f1) = squad(&rust_answers, test);
    let (python_exact, python_f1) = squad(python_answers, test);
    let agreement = rust_answers.iter().zip(python_answers).filter(|(r, p)| r == p).count();
    figures.row(
        Rule::Exact,
        &format!("test split exact match ({} questions)", test.len()),
        format!("Rust {rust_exact:.4}, PyTorch {python_exact:.4}"),
        "equal",
        same_split && (rust_exact - python_exact).abs() < 1e-9,
    );
    figures.test_metric(
        &format!("test split F1 ({} questions)", test.len()),
        rust_f1,
        python_f1,
        (rust_f1 - python_f1).abs() < 1e-9,
        same_split,
    );
    if figures.int8() {
        let alone = best(&through.answer_each(&test_pairs, impossible).await?);
        figures.alone_metric("F1", squad(&alone, test).1, python_f1);
    }
    figures.row(
        Rule::Every,
        "test split questions with PyTorch's answer",
        format!("{agreement}/{}", test.len()),
        "reported",
        true,
    );

    Ok(Checked {
        checkpoint: reference.checkpoint_sha256.clone(),
        metric: ParityMetric {
            name: "f1".into(),
            value: rust_f1,
            pytorch: python_f1,
            teacher: None,
        },
        summary: ParitySummary {
            drift: Drift::new("max |Δlogit|", alone_max),
            golden: Agreement::new("answers", default_agree, pairs.len()),
            test_agreement: Agreement::new("answers", agreement, test.len()),
        },
        details: json!({
            "windows": {"questions": pairs.len(), "windows": windows, "mismatched": id_mismatches},
            "logits_max_abs_diff": {"alone": alone_max, "bound": LOGIT_BOUND},
            "span_selection": {"max_abs_score_diff": selection_max, "differences": selection_errors},
            "pipeline_json": {"answers": compared, "max_abs_score_diff": pipeline_max, "bound": SCORE_BOUND, "differences": pipeline_errors},
            "test_split": {
                "examples": test.len(),
                "rust_exact_match": rust_exact,
                "pytorch_exact_match": python_exact,
                "rust_f1": rust_f1,
                "pytorch_f1": python_f1,
                "questions_agreeing": agreement,
            },
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_split::GoldAnswer;

    fn row(answers: &[&str]) -> QuestionRow {
        QuestionRow {
            question: "q".into(),
            context: "c".into(),
            answers: answers
                .iter()
                .map(|text| GoldAnswer {
                    text: (*text).into(),
                    start: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn squad_normalises_case_punctuation_and_articles() {
        assert_eq!(normalized_words("The v2.0, Release!"), ["v20", "release"]);
        assert!((f1("the PostgreSQL 16.2", "PostgreSQL 16.2") - 1.0).abs() < 1e-12);
        // One word of two: precision 1/2, recall 1.
        assert!((f1("PostgreSQL 16.2", "16.2") - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(f1("", ""), 1.0);
        assert_eq!(f1("16.2", ""), 0.0);
        let rows = [row(&["16.2"]), row(&[]), row(&["Redis"])];
        let (exact, f1) = squad(&["16.2".into(), String::new(), "Redis 7".into()], &rows);
        assert!((exact - 2.0 / 3.0).abs() < 1e-12);
        assert!((f1 - (1.0 + 1.0 + 2.0 / 3.0) / 3.0).abs() < 1e-12);
    }
}
