//! Which training figures a model card quotes.
//!
//! Training is reproducible on one machine but not across CPU kinds: bf16 and oneDNN's
//! kernels differ between, say, an AMX Xeon and an AVX-512 EPYC, so a retrained model's
//! test metrics move in their last digits from one kind to another (release-ner's entity
//! F1: 0.9014 on one, 0.9017 on the other, precision 0.8813 and 0.8858) while the spec,
//! data and code are the same. A card that quoted each run's figures would make
//! `cargo xtask gen --check` fail on every other machine.
//!
//! So the run a card describes is recorded beside the crate, `generated/<name>/training.json`
//! (checked in, written by `cargo xtask gen`). A later run that agrees with it (every count
//! equal, every fraction within [`TOLERANCE`]) leaves card and record as they are, and `gen`
//! says how far the two runs differ; a run that does not agree is a different model, and
//! its figures replace the record, so `gen --check` names the card as stale.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The record's file, in the model's crate folder.
pub const FILE: &str = "training.json";

/// Largest difference of a fraction (accuracy, recall, F1, precision) between two runs of
/// the same model on different machines: one point, what the gates allow a variant.
pub const TOLERANCE: f64 = 0.01;

/// What a model card quotes of the train step's `metrics.json` (its other fields, per-epoch
/// losses and per-type scores, stay in the artifacts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingFigures {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    pub test_examples: u64,
    pub train_examples: u64,
    pub trainable_parameters: u64,
    pub total_parameters: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_recall_at_1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_recall_at_10: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_test_recall_at_1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_test_recall_at_10: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_entity_f1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_precision: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_recall: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_entities: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_exact_match: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_f1: Option<f64>,
    /// A detector's COCO mAP on the test scenes, and the objects they hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_map_50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_map_50_95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_boxes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples_per_class: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contrastive_pairs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_parameters: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_body_test_accuracy: Option<f64>,
}

/// The figures a card quotes, and when they are the record's rather than this run's, how
/// this run differs from them.
#[derive(Debug)]
pub struct Quoted {
    pub figures: TrainingFigures,
    /// `training.json` as `gen` writes it.
    pub record: String,
    pub kept_record: Option<String>,
}

/// The figures to quote: the record at `recorded` when this `run` agrees with it, else the
/// run's. A missing record is no error (a new model); an unreadable one is.
pub fn quoted(recorded: &Path, run: TrainingFigures) -> Result<Quoted> {
    let record = match std::fs::read_to_string(recorded) {
        Ok(text) => Some(
            serde_json::from_str::<TrainingFigures>(&text)
                .with_context(|| format!("{} is not what `cargo xtask gen` writes", recorded.display()))?,
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", recorded.display())),
    };
    let (figures, kept_record) = match record {
        Some(record) if record == run => (record, None),
        Some(record) => match differences(&record, &run)? {
            Some(moved) => (record, Some(moved)),
            None => (run, None),
        },
        None => (run, None),
    };
    let record = serde_json::to_string_pretty(&figures)? + "\n";
    Ok(Quoted {
        figures,
        record,
        kept_record,
    })
}

/// How `run` differs from `record` when they agree (every count equal, every fraction
/// within `TOLERANCE`, the same fields present), e.g. `test_entity_f1 0.9017 (recorded
/// 0.9014)`; `None` when they do not.
fn differences(record: &TrainingFigures, run: &TrainingFigures) -> Result<Option<String>> {
    let (Value::Object(record), Value::Object(run)) = (serde_json::to_value(record)?, serde_json::to_value(run)?)
    else {
        return Ok(None);
    };
    if record.len() != run.len() {
        return Ok(None);
    }
    let mut moved = Vec::new();
    for (field, recorded) in &record {
        let Some(now) = run.get(field) else { return Ok(None) };
        if recorded == now {
            continue;
        }
        match (recorded.as_u64(), now.as_u64(), recorded.as_f64(), now.as_f64()) {
            // Counts: examples, entities, parameters are the same in every run of a spec.
            (Some(_), Some(_), _, _) => return Ok(None),
            (_, _, Some(a), Some(b)) if (a - b).abs() <= TOLERANCE => {
                moved.push(format!("{field} {b:.4} (recorded {a:.4})"));
            }
            _ => return Ok(None),
        }
    }
    Ok(Some(moved.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::ScratchDir;

    fn figures(f1: f64, entities: u64) -> TrainingFigures {
        TrainingFigures {
            test_accuracy: None,
            test_examples: 600,
            train_examples: 2100,
            trainable_parameters: 22_567_301,
            total_parameters: 22_567_301,
            test_recall_at_1: None,
            test_recall_at_10: None,
            base_test_recall_at_1: None,
            base_test_recall_at_10: None,
            test_entity_f1: Some(f1),
            test_precision: Some(0.8813),
            test_recall: Some(0.9225),
            test_entities: Some(entities),
            test_exact_match: None,
            test_f1: None,
            test_map_50: None,
            test_map_50_95: None,
            test_boxes: None,
            examples_per_class: None,
            contrastive_pairs: None,
            head_parameters: None,
            base_body_test_accuracy: None,
        }
    }

    fn recorded(name: &str, figures: &TrainingFigures) -> ScratchDir {
        let dir = ScratchDir::new(name);
        std::fs::write(dir.path().join(FILE), serde_json::to_string(figures).unwrap()).unwrap();
        dir
    }

    #[test]
    fn a_run_within_the_tolerance_keeps_the_recorded_figures_and_says_how_it_differs() {
        let dir = recorded("card-kept", &figures(0.9014, 1368));
        let quoted = quoted(&dir.path().join(FILE), figures(0.9017, 1368)).unwrap();
        assert_eq!(quoted.figures, figures(0.9014, 1368));
        assert_eq!(
            quoted.kept_record.as_deref(),
            Some("test_entity_f1 0.9017 (recorded 0.9014)")
        );
        assert!(quoted.record.contains("0.9014"), "{}", quoted.record);
    }

    #[test]
    fn a_run_beyond_the_tolerance_or_with_other_counts_is_quoted_as_it_is() {
        let dir = recorded("card-replaced", &figures(0.9014, 1368));
        let path = dir.path().join(FILE);
        let further = quoted(&path, figures(0.8814, 1368)).unwrap();
        assert_eq!((further.figures, further.kept_record), (figures(0.8814, 1368), None));
        let recounted = quoted(&path, figures(0.9014, 1369)).unwrap();
        assert_eq!(recounted.figures, figures(0.9014, 1369));
        let mut fewer = figures(0.9014, 1368);
        fewer.test_precision = None;
        assert_eq!(quoted(&path, fewer.clone()).unwrap().figures, fewer);
    }

    #[test]
    fn a_new_model_quotes_its_run_and_a_broken_record_is_named() {
        let dir = ScratchDir::new("card-new");
        let path = dir.path().join(FILE);
        assert_eq!(quoted(&path, figures(0.9, 1368)).unwrap().figures, figures(0.9, 1368));
        std::fs::write(&path, "{").unwrap();
        let error = format!("{:#}", quoted(&path, figures(0.9, 1368)).unwrap_err());
        assert!(error.contains(FILE) && error.contains("cargo xtask gen"), "{error}");
    }
}
