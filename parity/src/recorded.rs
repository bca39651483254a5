//! The parameters of a pipeline call `cargo xtask golden` recorded (`reference.json`'s
//! `pipeline_calls`), read into the core's types: what the gate replays through the core.

use anyhow::{Context, Result, bail};
use modelcrate_core::TopK;
use modelcrate_runtime::classification::ClassificationFunction;
use modelcrate_runtime::{AggregationStrategy, AnswerOptions};
use serde_json::Value;

/// A text or image classification call: `top_k` (absent, `null` for all, or k) and
/// `function_to_apply`.
pub fn classification(call: &Value) -> Result<(TopK, Option<ClassificationFunction>)> {
    let top_k = match call.get("top_k") {
        None => TopK::Absent,
        Some(Value::Null) => TopK::All,
        Some(k) => match k.as_u64().and_then(|k| usize::try_from(k).ok()) {
            Some(k) if k >= 1 => TopK::K(k),
            _ => bail!("recorded call {call}: `top_k` {k} is not a count"),
        },
    };
    let function = match call.get("function_to_apply") {
        None => None,
        Some(name) => Some(
            name.as_str()
                .and_then(ClassificationFunction::parse)
                .with_context(|| format!("recorded call {call}: unknown `function_to_apply` {name}"))?,
        ),
    };
    Ok((top_k, function))
}

/// A token classification call: `aggregation_strategy` (the server's default, `simple`,
/// when absent) and `ignore_labels` (the pipeline's default when absent).
pub fn entities(call: &Value) -> Result<(AggregationStrategy, Option<Vec<String>>)> {
    let strategy = match call.get("aggregation_strategy") {
        None => AggregationStrategy::Simple,
        Some(name) => name
            .as_str()
            .and_then(AggregationStrategy::parse)
            .with_context(|| format!("recorded call {call}: unknown `aggregation_strategy` {name}"))?,
    };
    let ignore_labels = match call.get("ignore_labels") {
        None => None,
        Some(labels) => Some(
            labels
                .as_array()
                .and_then(|labels| labels.iter().map(|label| label.as_str().map(str::to_string)).collect())
                .with_context(|| format!("recorded call {call}: `ignore_labels` is not a list of labels"))?,
        ),
    };
    Ok((strategy, ignore_labels))
}

/// A question-answering call: the pipeline's parameters over its defaults.
pub fn answer_options(call: &Value) -> Result<AnswerOptions> {
    let count = |name: &str| -> Result<Option<usize>> {
        match call.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .with_context(|| format!("recorded call {call}: `{name}` {value} is not a count")),
        }
    };
    let flag = |name: &str| -> Result<Option<bool>> {
        match call.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_bool()
                .map(Some)
                .with_context(|| format!("recorded call {call}: `{name}` {value} is not true or false")),
        }
    };
    let defaults = AnswerOptions::default();
    Ok(AnswerOptions {
        top_k: count("top_k")?.unwrap_or(defaults.top_k),
        doc_stride: count("doc_stride")?,
        max_answer_len: count("max_answer_len")?.unwrap_or(defaults.max_answer_len),
        max_seq_len: count("max_seq_len")?,
        max_question_len: count("max_question_len")?.unwrap_or(defaults.max_question_len),
        handle_impossible_answer: flag("handle_impossible_answer")?.unwrap_or(defaults.handle_impossible_answer),
        align_to_words: flag("align_to_words")?.unwrap_or(defaults.align_to_words),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recorded_calls_read_as_the_pipeline_takes_them() {
        assert_eq!(classification(&json!({})).unwrap(), (TopK::Absent, None));
        assert_eq!(
            classification(&json!({"top_k": null, "function_to_apply": "sigmoid"})).unwrap(),
            (TopK::All, Some(ClassificationFunction::Sigmoid))
        );
        assert_eq!(classification(&json!({"top_k": 2})).unwrap().0, TopK::K(2));
        assert!(classification(&json!({"top_k": 0})).is_err());
        assert!(classification(&json!({"function_to_apply": "tanh"})).is_err());
        assert_eq!(
            entities(&json!({"aggregation_strategy": "first", "ignore_labels": ["O", "VERSION"]})).unwrap(),
            (
                AggregationStrategy::First,
                Some(vec!["O".to_string(), "VERSION".to_string()])
            )
        );
        assert_eq!(
            entities(&json!({"ignore_labels": []})).unwrap(),
            (AggregationStrategy::Simple, Some(vec![]))
        );
        assert!(entities(&json!({"aggregation_strategy": "longest"})).is_err());
        assert_eq!(answer_options(&json!({})).unwrap(), AnswerOptions::default());
        let small = answer_options(&json!({"max_seq_len": 64, "doc_stride": 16, "top_k": 2})).unwrap();
        assert_eq!(
            (small.max_seq_len, small.doc_stride, small.top_k),
            (Some(64), Some(16), 2)
        );
        assert!(answer_options(&json!({"handle_impossible_answer": 1})).is_err());
    }
}
