//! The parameters of a pipeline call `cargo xtask golden` recorded (`reference.json`'s
//! `pipeline_calls`), read into the core's types: what the gate replays through the core.

use anyhow::{Context, Result, bail};
use modelcrate_core::TopK;
use modelcrate_runtime::AggregationStrategy;
use modelcrate_runtime::classification::ClassificationFunction;
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
    }
}
