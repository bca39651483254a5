//! Parity of an object detector, stage by stage: letterboxed pixels against PIL's, the
//! detections after the pipeline's post-processing against PyTorch's (each image alone,
//! then all in one request), undecodable files refused by both sides, and mAP over the
//! test scenes (PNG files, decoded by each side).
//!
//! The bounds: a PNG's letterboxed pixels have one right value (PIL's fixed-point resize,
//! computed the same here), so they must be identical, and then the detections differ
//! only by ONNX Runtime against PyTorch: the same objects (label for label), each box
//! within 0.5 pixel and each score within 1e-4. An object PyTorch scores within 1e-4 of
//! the threshold may fall on either side of it, so it may be missing from either answer
//! (counted). A JPEG's pixels may differ by a few levels (no decoder is bit-exact; see
//! `image.rs`): within 8, and its detections must name the same objects with scores
//! within `JPEG_SCORE_BOUND` (an object that near the threshold may be on either side),
//! their boxes' drift reported. mAP over the test scenes: an exact variant's within `MAP_BOUND` of PyTorch's
//! (scores that drift by 1e-6 can swap two detections of nearly equal score, which moves
//! the precision of the ranks between them), an INT8 variant's at most 1.0 point below on
//! both mAP@0.5 and mAP@0.5:0.95.

use std::path::Path;

use anyhow::{Context, Result};
use modelcrate_runtime::ModelInfo;
use modelcrate_runtime::detection::{BoundingBox, DecodeOptions, RawDetection};
use modelcrate_runtime::image::{DEFAULT_MAX_PIXELS, decode};
use modelcrate_schema::{Agreement, Drift, Gate, ParityMetric, ParitySummary};
use serde::Deserialize;
use serde_json::json;

use super::average_precision::{MeanAp, Truth, mean_average_precision};
use super::{Checked, Figures, INT8_METRIC_DROP, Rule};
use crate::pixels::{JPEG_PIXEL_BOUND, Refusals, is_jpeg, pixel_difference};
use crate::test_split::SceneRow;
use crate::through::Through;

/// Largest |score difference| of one object, exact variants.
const SCORE_BOUND: f64 = 1e-4;
/// Largest difference of a box's corner, in the image's pixels, exact variants.
const BOX_BOUND: f64 = 0.5;
/// Largest |score difference| a JPEG's decoding difference may cause: three times the
/// largest measured on the golden JPEGs (3.0e-3 at 3 levels), so that a decoder change
/// shows. An object that close to the threshold may fall on either side of it.
const JPEG_SCORE_BOUND: f64 = 0.01;
/// Largest |mAP difference| of an exact variant from PyTorch's.
const MAP_BOUND: f64 = 1e-3;

#[derive(Deserialize)]
struct Reference {
    checkpoint_sha256: String,
    threshold: f64,
    iou_threshold: f64,
    cases: Vec<Case>,
    test_split: TestSplit,
}

#[derive(Deserialize)]
struct Case {
    id: String,
    file: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    pipeline: Vec<Object>,
}

/// One of PyTorch's detections, unrounded.
#[derive(Deserialize, Clone)]
struct Object {
    label: String,
    score: f64,
    #[serde(rename = "box")]
    bbox: Corners,
}

#[derive(Deserialize, Clone, Copy)]
struct Corners {
    xmin: f64,
    ymin: f64,
    xmax: f64,
    ymax: f64,
}

#[derive(Deserialize)]
struct TestSplit {
    examples: usize,
    threshold: f64,
    max_detections: usize,
    map_50: f64,
    map_50_95: f64,
    /// PyTorch's detections of every test scene, in the model's artifacts folder.
    detections_file: String,
}

#[derive(Deserialize)]
struct TestDetections {
    detections: Vec<Vec<Object>>,
}

/// How two answers for one image compare.
#[derive(Debug, Default, Clone, Copy)]
struct Compared {
    /// Objects found by both.
    matched: usize,
    /// Objects found by one side only, PyTorch's score of it within the bound of the
    /// threshold (either side of it is right).
    at_threshold: usize,
    /// Objects found by one side only, clear of the threshold: a difference.
    unmatched: usize,
    max_score: f64,
    max_corner: f64,
}

impl Compared {
    fn add(&mut self, other: Compared) {
        self.matched += other.matched;
        self.at_threshold += other.at_threshold;
        self.unmatched += other.unmatched;
        self.max_score = self.max_score.max(other.max_score);
        self.max_corner = self.max_corner.max(other.max_corner);
    }

    fn within(&self, score: f64, corner: f64) -> bool {
        self.unmatched == 0 && self.max_score <= score && self.max_corner <= corner
    }
}

impl From<Corners> for BoundingBox {
    fn from(corners: Corners) -> Self {
        Self {
            xmin: corners.xmin,
            ymin: corners.ymin,
            xmax: corners.xmax,
            ymax: corners.ymax,
        }
    }
}

fn corner_difference(a: &BoundingBox, b: &Corners) -> f64 {
    [
        (a.xmin - b.xmin).abs(),
        (a.ymin - b.ymin).abs(),
        (a.xmax - b.xmax).abs(),
        (a.ymax - b.ymax).abs(),
    ]
    .into_iter()
    .fold(0.0, f64::max)
}

/// Each of PyTorch's objects paired with the unpaired Rust detection of its label whose
/// box is nearest, among those that overlap it by IoU ≥ 0.5 (the same object); an object
/// of one side only counts as at the threshold when its score is within `margin` (the
/// scores' bound) of it, else as unmatched.
fn compare(rust: &[RawDetection], python: &[Object], labels: &[&str], threshold: f64, margin: f64) -> Compared {
    let mut taken = vec![false; rust.len()];
    let mut compared = Compared::default();
    let near_threshold = |score: f64| score - threshold < margin;
    for object in python {
        let nearest = rust
            .iter()
            .enumerate()
            .filter(|(index, found)| {
                !taken[*index]
                    && labels.get(found.label_id) == Some(&object.label.as_str())
                    && found.bbox.iou(&object.bbox.into()) >= 0.5
            })
            .map(|(index, found)| (index, corner_difference(&found.bbox, &object.bbox)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match nearest {
            Some((index, corner)) => {
                taken[index] = true;
                compared.matched += 1;
                compared.max_corner = compared.max_corner.max(corner);
                compared.max_score = compared.max_score.max((rust[index].score - object.score).abs());
            }
            _ if near_threshold(object.score) => compared.at_threshold += 1,
            _ => compared.unmatched += 1,
        }
    }
    for (found, _) in rust.iter().zip(&taken).filter(|(_, taken)| !**taken) {
        if near_threshold(found.score) {
            compared.at_threshold += 1;
        } else {
            compared.unmatched += 1;
        }
    }
    compared
}

/// PyTorch's detections with their labels as ids; `None` if one names no label of `labels`.
fn python_detections(images: &[Vec<Object>], labels: &[&str]) -> Option<Vec<Vec<RawDetection>>> {
    images
        .iter()
        .map(|image| {
            image
                .iter()
                .map(|object| {
                    Some(RawDetection {
                        label_id: labels.iter().position(|label| *label == object.label)?,
                        score: object.score,
                        bbox: object.bbox.into(),
                    })
                })
                .collect()
        })
        .collect()
}

fn truth_of(row: &SceneRow) -> Vec<Truth> {
    row.boxes
        .iter()
        .map(|object| Truth {
            label_id: object.label_id,
            bbox: BoundingBox {
                xmin: object.bbox.xmin,
                ymin: object.bbox.ymin,
                xmax: object.bbox.xmax,
                ymax: object.bbox.ymax,
            },
        })
        .collect()
}

/// Checks the detector described by `info` against the golden `reference.json`, the
/// letterboxed pixels and test-scene detections Python wrote to `model_dir`
/// (`<artifacts>/<name>/`), and the test scenes.
pub(super) async fn check(
    through: &Through,
    info: &ModelInfo,
    reference: &str,
    golden_dir: &Path,
    model_dir: &Path,
    test: &[(SceneRow, Vec<u8>)],
    figures: &mut Figures,
) -> Result<Checked> {
    let reference: Reference = serde_json::from_str(reference).context("it is not what `cargo xtask golden` writes")?;
    let pixels_dir = model_dir.join("golden-pixels");
    let detections_path = model_dir.join(&reference.test_split.detections_file);
    let python_test: TestDetections = serde_json::from_str(
        &std::fs::read_to_string(&detections_path)
            .with_context(|| format!("cannot read {}: run `cargo xtask golden`", detections_path.display()))?,
    )
    .with_context(|| format!("{} is not what `cargo xtask golden` writes", detections_path.display()))?;
    let labels = info.labels;
    let detector = info.detector.context("a detector without its letterbox")?;
    let read = |path: &Path| std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    let options = DecodeOptions {
        threshold: reference.threshold,
        iou_threshold: reference.iou_threshold,
    };

    let (mut png_pixels, mut jpeg_level) = ((0usize, 0usize), 0u8);
    let (mut png, mut jpeg) = (Compared::default(), Compared::default());
    let (mut refusals, mut per_case) = (Refusals::default(), Vec::new());
    let mut decodable = Vec::new();
    for case in &reference.cases {
        let bytes = read(&golden_dir.join(&case.file))?;
        if let Some(python_error) = &case.error {
            per_case.extend(refusals.check(&case.id, &bytes, python_error));
            continue;
        }
        let image = decode(&bytes, DEFAULT_MAX_PIXELS).with_context(|| format!("golden image {}", case.id))?;
        let (pixels, _) = modelcrate_runtime::detection::letterbox(&image, detector.letterboxing.size);
        let pixels: Vec<u8> = pixels.iter().copied().collect();
        let letterboxed = pixel_difference(
            &pixels,
            &read(&pixels_dir.join(format!("{}.letterboxed.rgb", case.id)))?,
        );
        let found = through
            .detections(&[&bytes], options)
            .await?
            .pop()
            .context("one image gives one answer")?;
        let margin = if is_jpeg(&case.file) {
            JPEG_SCORE_BOUND
        } else {
            SCORE_BOUND
        };
        let compared = compare(&found, &case.pipeline, labels, options.threshold, margin);
        if is_jpeg(&case.file) {
            jpeg_level = jpeg_level.max(letterboxed.1);
            jpeg.add(compared);
        } else {
            png_pixels.0 += 1;
            png_pixels.1 += usize::from(letterboxed.0 == 0);
            png.add(compared);
        }
        per_case.push(json!({
            "id": case.id,
            "letterboxed": {"differing_bytes": letterboxed.0, "max_level": letterboxed.1},
            "objects": {"rust": found.len(), "python": case.pipeline.len(), "matched": compared.matched, "at_threshold": compared.at_threshold, "unmatched": compared.unmatched},
            "max_abs_score_diff": compared.max_score,
            "max_corner_diff": compared.max_corner,
        }));
        decodable.push((case, bytes));
    }

    figures.row(
        Rule::Every,
        "PNG letterboxed pixels identical to PIL's",
        format!("{}/{} images", png_pixels.1, png_pixels.0),
        "all",
        png_pixels.0 > 0 && png_pixels.1 == png_pixels.0,
    );
    figures.row(
        Rule::Every,
        "JPEG letterboxed pixels, max level difference",
        jpeg_level.to_string(),
        &format!("≤ {JPEG_PIXEL_BOUND}"),
        jpeg_level <= JPEG_PIXEL_BOUND,
    );
    refusals.row(figures);
    let shown = |c: &Compared| {
        format!(
            "{} objects matched, {} at the threshold, {} unmatched; max |score diff| {:.2e}, max corner diff {:.3} px",
            c.matched, c.at_threshold, c.unmatched, c.max_score, c.max_corner
        )
    };
    figures.row(
        Rule::Exact,
        "PNG detections, each image alone",
        shown(&png),
        "same objects, scores 1e-4, boxes 0.5 px",
        png.within(SCORE_BOUND, BOX_BOUND),
    );
    figures.row(
        Rule::Exact,
        "JPEG detections, each image alone",
        shown(&jpeg),
        &format!("same objects, scores {JPEG_SCORE_BOUND} (decoder difference; boxes reported)"),
        jpeg.unmatched == 0 && jpeg.max_score <= JPEG_SCORE_BOUND,
    );

    // All decodable images in one request, against PyTorch's own (each alone there: its
    // convolutions do not mix the images of a batch).
    let images: Vec<&[u8]> = decodable.iter().map(|(_, bytes)| bytes.as_slice()).collect();
    let batched = through.detections(&images, options).await?;
    let mut batch_png = Compared::default();
    for ((case, _), found) in decodable.iter().zip(&batched) {
        if !is_jpeg(&case.file) {
            batch_png.add(compare(found, &case.pipeline, labels, options.threshold, SCORE_BOUND));
        }
    }
    figures.row(
        Rule::Exact,
        "PNG detections, all images in one request",
        shown(&batch_png),
        "same objects, scores 1e-4, boxes 0.5 px",
        batch_png.within(SCORE_BOUND, BOX_BOUND),
    );

    // The test scenes: detections at the evaluation's threshold, and their mAP.
    let split = &reference.test_split;
    let evaluation = DecodeOptions {
        threshold: split.threshold,
        iou_threshold: reference.iou_threshold,
    };
    let scenes: Vec<&[u8]> = test.iter().map(|(_, bytes)| bytes.as_slice()).collect();
    let mut found = through.detections_in_requests(&scenes, evaluation).await?;
    for image in &mut found {
        image.truncate(split.max_detections);
    }
    let truth: Vec<Vec<Truth>> = test.iter().map(|(row, _)| truth_of(row)).collect();
    let rust = mean_average_precision(&found, &truth, labels.len()).context("the test scenes hold no object")?;
    let same_split = test.len() == split.examples && python_test.detections.len() == test.len();
    // The mAP computed here on PyTorch's own detections is Python's figure: what the
    // comparison below measures is the detections, not two ways of scoring them.
    let recomputed = python_detections(&python_test.detections, labels)
        .and_then(|python| mean_average_precision(&python, &truth, labels.len()))
        .context("PyTorch's test detections name a label this model does not have")?;
    let scoring = (recomputed.map_50 - split.map_50)
        .abs()
        .max((recomputed.map_50_95 - split.map_50_95).abs());
    figures.row(
        Rule::Every,
        "mAP of PyTorch's test detections, computed here, as Python's",
        format!("max |difference| {scoring:.1e}"),
        "1e-12",
        same_split && scoring <= 1e-12,
    );
    let mut agreement = Compared::default();
    let mut scenes_agreeing = 0;
    for (image, python) in found.iter().zip(&python_test.detections) {
        let served: Vec<RawDetection> = image
            .iter()
            .filter(|d| d.score >= reference.threshold)
            .copied()
            .collect();
        let python: Vec<Object> = python
            .iter()
            .filter(|o| o.score >= reference.threshold)
            .cloned()
            .collect();
        let compared = compare(&served, &python, labels, reference.threshold, SCORE_BOUND);
        scenes_agreeing += usize::from(compared.unmatched == 0);
        agreement.add(compared);
    }
    let pytorch = MeanAp {
        map_50: split.map_50,
        map_50_95: split.map_50_95,
    };
    map_rows(figures, test.len(), rust, pytorch, same_split);
    figures.row(
        Rule::Every,
        &format!(
            "test scenes: served detections (score ≥ {}) as PyTorch's",
            reference.threshold
        ),
        format!("{scenes_agreeing}/{} scenes; {}", test.len(), shown(&agreement)),
        "reported",
        true,
    );

    Ok(Checked {
        checkpoint: reference.checkpoint_sha256.clone(),
        metric: ParityMetric {
            name: "mAP@0.5:0.95".into(),
            value: rust.map_50_95,
            pytorch: split.map_50_95,
            teacher: None,
        },
        summary: ParitySummary {
            drift: Drift::new("max |Δscore|", png.max_score.max(batch_png.max_score)),
            golden: Agreement::new(
                "objects",
                png.matched + jpeg.matched,
                png.matched + jpeg.matched + png.unmatched + jpeg.unmatched,
            ),
            test_agreement: Agreement::new("scenes", scenes_agreeing, test.len()),
        },
        details: json!({
            "letterboxed": {"png_images": png_pixels.0, "png_identical": png_pixels.1, "jpeg_max_level": jpeg_level},
            "golden": {
                "png_alone": {"matched": png.matched, "at_threshold": png.at_threshold, "unmatched": png.unmatched, "max_abs_score_diff": png.max_score, "max_corner_diff": png.max_corner},
                "png_batched": {"matched": batch_png.matched, "at_threshold": batch_png.at_threshold, "unmatched": batch_png.unmatched, "max_abs_score_diff": batch_png.max_score, "max_corner_diff": batch_png.max_corner},
                "jpeg_alone": {"matched": jpeg.matched, "at_threshold": jpeg.at_threshold, "unmatched": jpeg.unmatched, "max_abs_score_diff": jpeg.max_score, "max_corner_diff": jpeg.max_corner},
                "bounds": {"score": SCORE_BOUND, "corner": BOX_BOUND},
            },
            "refused": refusals.refused(),
            "cases": per_case,
            "test_split": {
                "examples": test.len(),
                "threshold": split.threshold,
                "rust": {"map_50": rust.map_50, "map_50_95": rust.map_50_95},
                "pytorch": {"map_50": split.map_50, "map_50_95": split.map_50_95},
                "scenes_agreeing": scenes_agreeing,
            },
        }),
    })
}

/// mAP@0.5 and mAP@0.5:0.95 against PyTorch's: an exact variant's within `MAP_BOUND`, an
/// INT8 variant's at most 1.0 point below, each.
fn map_rows(figures: &mut Figures, scenes: usize, rust: MeanAp, pytorch: MeanAp, same_split: bool) {
    for (name, rust, pytorch) in [
        ("mAP@0.5", rust.map_50, pytorch.map_50),
        ("mAP@0.5:0.95", rust.map_50_95, pytorch.map_50_95),
    ] {
        let (bound, held) = match figures.gate {
            Gate::Exact => (format!("within {MAP_BOUND}"), (rust - pytorch).abs() <= MAP_BOUND),
            Gate::Int8 => (
                "at most 1.0 point below PyTorch".to_string(),
                pytorch - rust <= INT8_METRIC_DROP + 1e-9,
            ),
        };
        figures.row(
            Rule::Every,
            &format!("test scenes {name} ({scenes} scenes)"),
            format!("Rust {rust:.4}, PyTorch {pytorch:.4}"),
            &bound,
            same_split && held,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(label: &str, score: f64, xmin: f64) -> Object {
        Object {
            label: label.into(),
            score,
            bbox: Corners {
                xmin,
                ymin: 0.0,
                xmax: xmin + 10.0,
                ymax: 10.0,
            },
        }
    }

    fn found(label_id: usize, score: f64, xmin: f64) -> RawDetection {
        RawDetection {
            label_id,
            score,
            bbox: BoundingBox {
                xmin,
                ymin: 0.0,
                xmax: xmin + 10.0,
                ymax: 10.0,
            },
        }
    }

    #[test]
    fn objects_pair_by_label_and_nearest_box_and_the_threshold_excuses_only_its_neighbours() {
        let labels = ["cat", "dog"];
        let python = [
            object("cat", 0.9, 0.0),
            object("dog", 0.8, 0.2),
            object("cat", 0.50005, 40.0),
        ];
        // Rust's order differs, its dog box is 0.3 px off, and the cat at 0.50005 fell
        // just under the threshold: matched, within bounds, one at the threshold.
        let rust = [found(1, 0.80002, 0.5), found(0, 0.9, 0.0)];
        let compared = compare(&rust, &python, &labels, 0.5, SCORE_BOUND);
        assert_eq!((compared.matched, compared.at_threshold, compared.unmatched), (2, 1, 0));
        assert!(compared.within(SCORE_BOUND, BOX_BOUND), "{compared:?}");
        assert!((compared.max_corner - 0.3).abs() < 1e-9 && (compared.max_score - 2e-5).abs() < 1e-9);
        // A box 0.6 px off breaks the bound; an object of another label is no pair; a
        // clear object of one side only is a difference.
        assert!(
            !compare(&[found(1, 0.8, 0.8)], &python[1..2], &labels, 0.5, SCORE_BOUND).within(SCORE_BOUND, BOX_BOUND)
        );
        let wrong_label = compare(&[found(0, 0.8, 0.2)], &python[1..2], &labels, 0.5, SCORE_BOUND);
        assert_eq!((wrong_label.matched, wrong_label.unmatched), (0, 2));
        assert_eq!(
            compare(&[found(0, 0.7, 99.0)], &[], &labels, 0.5, SCORE_BOUND).unmatched,
            1
        );
        // A JPEG's margin excuses an object 0.005 above the threshold, a PNG's does not.
        let faint = [object("cat", 0.505, 0.0)];
        assert_eq!(compare(&[], &faint, &labels, 0.5, SCORE_BOUND).unmatched, 1);
        assert_eq!(compare(&[], &faint, &labels, 0.5, JPEG_SCORE_BOUND).at_threshold, 1);
    }
}
