//! COCO's mean average precision, computed as `python/modelcrate/detector.py`'s
//! `mean_average_precision` computes it, operation for operation, so that a detector's
//! figure here and PyTorch's there differ only by their detections.
//!
//! Per label and IoU threshold: the label's detections over every image, by descending
//! score (ties keep image order, then each image's order); each is a hit when it overlaps
//! a not yet matched true box of its label and image by at least the threshold (the best
//! such box); precision made monotone from the end; the mean of the precision at the 101
//! recall levels 0, 0.01, …, 1 (0 past the last recall reached). mAP is the mean over
//! labels with a true box, then over the IoU thresholds 0.5, 0.55, …, 0.95.

use modelcrate_runtime::detection::{BoundingBox, RawDetection};

/// One true object: its label id and box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truth {
    pub label_id: usize,
    pub bbox: BoundingBox,
}

/// mAP at IoU 0.5 and over COCO's ten thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanAp {
    pub map_50: f64,
    pub map_50_95: f64,
}

/// COCO's IoU thresholds, as Python writes them: `0.5 + 0.05 × i`.
fn thresholds() -> impl Iterator<Item = f64> {
    (0..10).map(|i| 0.5 + 0.05 * f64::from(i))
}

/// The mAP of `predicted` (per image, as decoded) against `truth` (per image) over
/// `labels` labels; `None` when no image holds a true box.
pub fn mean_average_precision(predicted: &[Vec<RawDetection>], truth: &[Vec<Truth>], labels: usize) -> Option<MeanAp> {
    let mut per_threshold = Vec::new();
    for threshold in thresholds() {
        let aps: Vec<f64> = (0..labels)
            .filter_map(|label| average_precision(predicted, truth, label, threshold))
            .collect();
        if aps.is_empty() {
            return None;
        }
        per_threshold.push(aps.iter().sum::<f64>() / aps.len() as f64);
    }
    Some(MeanAp {
        map_50: per_threshold[0],
        map_50_95: per_threshold.iter().sum::<f64>() / per_threshold.len() as f64,
    })
}

/// One label's AP at one IoU threshold; `None` when it has no true box.
fn average_precision(
    predicted: &[Vec<RawDetection>],
    truth: &[Vec<Truth>],
    label: usize,
    threshold: f64,
) -> Option<f64> {
    let truths: Vec<Vec<BoundingBox>> = truth
        .iter()
        .map(|image| image.iter().filter(|t| t.label_id == label).map(|t| t.bbox).collect())
        .collect();
    let total: usize = truths.iter().map(Vec::len).sum();
    if total == 0 {
        return None;
    }
    let mut detections: Vec<(usize, f64, BoundingBox)> = predicted
        .iter()
        .enumerate()
        .flat_map(|(image, found)| {
            found
                .iter()
                .filter(|d| d.label_id == label)
                .map(move |d| (image, d.score, d.bbox))
        })
        .collect();
    // Stable, as Python's `sorted`.
    detections.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut matched: Vec<Vec<bool>> = truths.iter().map(|boxes| vec![false; boxes.len()]).collect();
    let (mut precision, mut recall, mut found) = (Vec::new(), Vec::new(), 0usize);
    for (rank, (image, _, bbox)) in detections.iter().enumerate() {
        let mut best: Option<usize> = None;
        let mut best_iou = threshold;
        for (index, candidate) in truths.get(*image).map_or(&[][..], Vec::as_slice).iter().enumerate() {
            if matched[*image][index] {
                continue;
            }
            let overlap = bbox.iou(candidate);
            if overlap >= best_iou {
                best = Some(index);
                best_iou = overlap;
            }
        }
        if let Some(index) = best {
            matched[*image][index] = true;
            found += 1;
        }
        precision.push(found as f64 / (rank + 1) as f64);
        recall.push(found as f64 / total as f64);
    }
    for i in (0..precision.len().saturating_sub(1)).rev() {
        precision[i] = precision[i].max(precision[i + 1]);
    }
    let points: Vec<f64> = (0..=100)
        .map(|i| {
            let level = f64::from(i) / 100.0;
            precision
                .iter()
                .zip(&recall)
                .find(|(_, r)| **r >= level)
                .map_or(0.0, |(p, _)| *p)
        })
        .collect();
    Some(points.iter().sum::<f64>() / points.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(xmin: f64, ymin: f64, xmax: f64, ymax: f64) -> BoundingBox {
        BoundingBox { xmin, ymin, xmax, ymax }
    }

    fn found(label_id: usize, score: f64, bbox: BoundingBox) -> RawDetection {
        RawDetection { label_id, score, bbox }
    }

    #[test]
    fn perfect_detections_score_one_and_none_score_zero() {
        let truth = vec![vec![Truth {
            label_id: 1,
            bbox: boxed(0.0, 0.0, 10.0, 10.0),
        }]];
        let perfect = vec![vec![found(1, 0.9, boxed(0.0, 0.0, 10.0, 10.0))]];
        let map = mean_average_precision(&perfect, &truth, 3).unwrap();
        assert_eq!((map.map_50, map.map_50_95), (1.0, 1.0));
        let nothing = vec![vec![]];
        let map = mean_average_precision(&nothing, &truth, 3).unwrap();
        assert_eq!((map.map_50, map.map_50_95), (0.0, 0.0));
        // Another label's box is no hit; no true box at all gives no mAP.
        let wrong = vec![vec![found(2, 0.9, boxed(0.0, 0.0, 10.0, 10.0))]];
        assert_eq!(mean_average_precision(&wrong, &truth, 3).unwrap().map_50, 0.0);
        assert_eq!(mean_average_precision(&perfect, &[vec![]], 3), None);
    }

    #[test]
    fn a_box_half_off_counts_at_low_thresholds_only_and_a_false_positive_first_costs_precision() {
        // IoU 0.6 with its truth: a hit at 0.5, 0.55 and 0.6 (an overlap equal to the
        // threshold counts), a miss from 0.65 up: AP 1 at three thresholds of ten.
        let truth = vec![vec![Truth {
            label_id: 0,
            bbox: boxed(0.0, 0.0, 10.0, 10.0),
        }]];
        let shifted = vec![vec![found(0, 0.8, boxed(0.0, 0.0, 10.0, 6.0))]];
        let map = mean_average_precision(&shifted, &truth, 1).unwrap();
        assert_eq!(map.map_50, 1.0);
        assert!((map.map_50_95 - 0.3).abs() < 1e-12, "{}", map.map_50_95);
        // A false positive scored above the hit: precision 1/2 at recall 1, at every level.
        let behind = vec![vec![
            found(0, 0.9, boxed(50.0, 50.0, 60.0, 60.0)),
            found(0, 0.8, boxed(0.0, 0.0, 10.0, 10.0)),
        ]];
        assert_eq!(mean_average_precision(&behind, &truth, 1).unwrap().map_50, 0.5);
    }
}
