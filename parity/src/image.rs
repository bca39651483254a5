//! Parity of an image classifier, stage by stage: decoded pixels against PIL's, the
//! pixels after resize and crop against torchvision's, logits against PyTorch's, the
//! pipeline-shaped answer, undecodable files refused by both sides, and accuracy over the
//! test split (PNG files, decoded by each side).
//!
//! The bounds: lossless PNG has one right decoding, and the resize is PIL's own
//! fixed-point arithmetic, so PNG pixels must be identical at every stage and logits
//! then differ only by ONNX Runtime against PyTorch (≤ 1e-4, as for text). JPEG has no
//! bit-exact decoder: the standard bounds the IDCT's error, not its rounding, and leaves
//! chroma upsampling to the decoder (libjpeg-turbo in PIL interpolates; zune-jpeg in the
//! `image` crate rounds differently), so a few levels differ here and there. A JPEG's
//! pixels must stay within 8 levels (twice the largest difference measured on the golden
//! JPEGs, so that a decoder change shows) and its top label must be PyTorch's; its logit
//! difference is reported, bounded by what that pixel difference moves (≤ 0.5 here).

use std::path::Path;

use anyhow::{Context, Result};
use modelcrate_core::{TopK, pipeline};
use modelcrate_runtime::ModelInfo;
use modelcrate_runtime::classification::{ClassificationFunction, best};
use modelcrate_schema::{Agreement, Drift, ParityMetric, ParitySummary};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Checked, Figures, Rule, max_abs_difference};
use crate::pixels::{Refusals, TransformPixels, is_jpeg};
use crate::test_split::ImageRow;
use crate::through::Through;

const LOGIT_BOUND: f64 = 1e-4;
const SCORE_BOUND: f64 = 1e-4;
/// Largest |logit difference| a JPEG's decoding difference may cause.
const JPEG_LOGIT_BOUND: f64 = 0.5;

#[derive(Deserialize)]
struct Reference {
    checkpoint_sha256: String,
    top_k: usize,
    cases: Vec<Case>,
    batch: Batch,
    test_split: TestSplit,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    file: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    logits: Vec<f64>,
    #[serde(default)]
    pipeline: Value,
}

#[derive(Deserialize)]
struct Batch {
    ids: Vec<String>,
    logits: Vec<Vec<f64>>,
}

#[derive(Deserialize)]
struct TestSplit {
    examples: usize,
    accuracy: f64,
    predictions: Vec<usize>,
}

/// Checks the image classifier described by `info` against the golden `reference.json`, the pixels Python wrote to
/// `<artifacts>/<name>/golden-pixels/`, and the test split.
pub(super) async fn check(
    through: &Through,
    info: &ModelInfo,
    reference: &str,
    golden_dir: &Path,
    pixels_dir: &Path,
    test: &[(ImageRow, Vec<u8>)],
    figures: &mut Figures,
) -> Result<Checked> {
    let reference: Reference = serde_json::from_str(reference).context("it is not what `cargo xtask golden` writes")?;
    let labels = info.labels;
    let preprocessing = info.image.context("an image classifier without its preprocessing")?;
    let read = |path: &Path| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));

    let mut stages = TransformPixels::default();
    let (mut png_logits, mut jpeg_logits, mut pipeline_max) = (0.0f64, 0.0f64, 0.0f64);
    let mut refusals = Refusals::default();
    let (mut top_mismatches, mut pipeline_errors, mut decodable) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_case = Vec::new();
    for case in &reference.cases {
        let bytes = read(&golden_dir.join(&case.file))?;
        if let Some(python_error) = &case.error {
            per_case.extend(refusals.check(&case.id, &bytes, python_error));
            continue;
        }
        let jpeg = is_jpeg(&case.file);
        let (decoded, cropped) = stages.add(&case.id, jpeg, &bytes, &preprocessing, pixels_dir)?;
        let logits = through
            .image_logits(&[&bytes])
            .await?
            .pop()
            .context("one image gives one answer")?;
        let difference = max_abs_difference(&logits, &case.logits);
        let python: Vec<f32> = case.logits.iter().map(|&l| l as f32).collect();
        if best(&logits).id != best(&python).id {
            top_mismatches.push(case.id.clone());
        }
        let scores = ClassificationFunction::Softmax.apply(&logits);
        let answer = pipeline::answer(labels, &[scores], TopK::K(reference.top_k), true);
        if jpeg {
            jpeg_logits = jpeg_logits.max(difference);
        } else {
            png_logits = png_logits.max(difference);
            match pipeline::difference(&answer, &case.pipeline, &case.id) {
                Ok(score) => pipeline_max = pipeline_max.max(score),
                Err(problem) => pipeline_errors.push(problem),
            }
        }
        per_case.push(json!({
            "id": case.id,
            "decoded": {"differing_bytes": decoded.0, "max_level": decoded.1},
            "cropped": {"differing_bytes": cropped.0, "max_level": cropped.1},
            "max_abs_logit_diff": difference,
        }));
        decodable.push((case, bytes));
    }

    stages.rows(figures);
    refusals.row(figures);
    figures.row(
        Rule::Exact,
        "max |logit diff|, PNG images alone",
        format!("{png_logits:.2e}"),
        "1e-4",
        png_logits <= LOGIT_BOUND,
    );
    figures.row(
        Rule::Exact,
        "max |logit diff|, JPEG images alone",
        format!("{jpeg_logits:.2e}"),
        &format!("{JPEG_LOGIT_BOUND} (decoder difference)"),
        jpeg_logits <= JPEG_LOGIT_BOUND,
    );

    // All decodable images as batches, against PyTorch's batch of the same images.
    let images: Vec<&[u8]> = decodable.iter().map(|(_, bytes)| bytes.as_slice()).collect();
    let batched = through.image_logits(&images).await?;
    let mut batch_png = 0.0f64;
    for ((case, _), row) in decodable.iter().zip(&batched) {
        let position = reference.batch.ids.iter().position(|id| id == &case.id);
        let python = position
            .and_then(|p| reference.batch.logits.get(p))
            .with_context(|| format!("the batch has no {}", case.id))?;
        if !is_jpeg(&case.file) {
            batch_png = batch_png.max(max_abs_difference(row, python));
        }
    }
    figures.row(
        Rule::Exact,
        "max |logit diff|, PNG images in batches",
        format!("{batch_png:.2e}"),
        "1e-4",
        batch_png <= LOGIT_BOUND,
    );
    figures.row(
        Rule::Exact,
        "top label identical",
        format!("{}/{} images", decodable.len() - top_mismatches.len(), decodable.len()),
        "all",
        top_mismatches.is_empty(),
    );
    figures.row(
        Rule::Exact,
        &format!("pipeline JSON (top {}), PNG images", reference.top_k),
        if pipeline_errors.is_empty() {
            format!("max |score diff| {pipeline_max:.2e}")
        } else {
            format!("{} differ, first: {}", pipeline_errors.len(), pipeline_errors[0])
        },
        "same labels, 1e-4",
        pipeline_errors.is_empty() && pipeline_max <= SCORE_BOUND,
    );

    let test_images: Vec<&[u8]> = test.iter().map(|(_, bytes)| bytes.as_slice()).collect();
    let predictions: Vec<usize> = through
        .image_logits_in_requests(&test_images)
        .await?
        .iter()
        .map(|row| best(row).id)
        .collect();
    let correct = predictions
        .iter()
        .zip(test)
        .filter(|(p, (row, _))| **p == row.label_id)
        .count();
    let rust_accuracy = correct as f64 / test.len().max(1) as f64;
    let agreement = predictions
        .iter()
        .zip(&reference.test_split.predictions)
        .filter(|(r, p)| r == p)
        .count();
    figures.test_metric(
        &format!("test split accuracy ({} images)", test.len()),
        rust_accuracy,
        reference.test_split.accuracy,
        (rust_accuracy - reference.test_split.accuracy).abs() < 1e-9,
        test.len() == reference.test_split.examples,
    );
    figures.row(
        Rule::Every,
        "test split top-1 agreement",
        format!("{agreement}/{}", test.len()),
        "reported",
        true,
    );

    let (decoded, cropped) = stages.json();
    Ok(Checked {
        checkpoint: reference.checkpoint_sha256.clone(),
        metric: ParityMetric {
            name: "accuracy".into(),
            value: rust_accuracy,
            pytorch: reference.test_split.accuracy,
            teacher: None,
        },
        summary: ParitySummary {
            drift: Drift::new("max |Δlogit|", png_logits),
            golden: Agreement::new("top-1", decodable.len() - top_mismatches.len(), decodable.len()),
            test_agreement: Agreement::new("top-1", agreement, test.len()),
        },
        details: json!({
            "decoded": decoded,
            "cropped": cropped,
            "logits_max_abs_diff": {"png_alone": png_logits, "png_batched": batch_png, "jpeg_alone": jpeg_logits, "bound": LOGIT_BOUND, "jpeg_bound": JPEG_LOGIT_BOUND},
            "top_label": {"images": decodable.len(), "mismatched": top_mismatches},
            "pipeline_json": {"max_abs_score_diff": pipeline_max, "bound": SCORE_BOUND, "differences": pipeline_errors},
            "refused": refusals.refused(),
            "cases": per_case,
            "test_split": {"examples": test.len(), "rust_accuracy": rust_accuracy, "pytorch_accuracy": reference.test_split.accuracy, "agreement": agreement},
        }),
    })
}
