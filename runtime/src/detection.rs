//! Object detection's pre- and post-processing, exactly as `python/modelcrate/detector.py`
//! computes them for PyTorch's detections: letterboxing an image onto the model's square
//! input, decoding the raw head outputs of each grid cell into scored boxes, and class-wise
//! non-maximum suppression.
//!
//! The network's outputs per image, cells row-major over the stride grid of the input:
//! `box_distances` `[cells, 4]` (log-distances, in strides, from the cell's centre to the
//! box's left, top, right and bottom), `centerness_logits` `[cells, 1]` and `class_logits`
//! `[cells, labels]`. A (cell, label) scores `sqrt(sigmoid(class) × sigmoid(centerness))`;
//! those at or above the threshold become boxes, mapped back from the letterboxed input to
//! the image and clipped to it, then suppressed label by label. Scores and boxes are
//! computed in f64 from the f32 outputs, as NumPy computes them there.

use image::RgbImage;
use ndarray::{Array2, Array3, ArrayView2, s};

use crate::error::{Error, Result};
use crate::image::{ImageError, decode as decode_image, normalized, resize};

/// The gray the letterbox pads with (YOLO's).
pub use modelcrate_schema::LETTERBOX_PAD_VALUE as PAD_LEVEL;
/// Distances above e^6 strides are not boxes: the exponent is capped there (as in training).
pub use modelcrate_schema::MAX_LOG_DISTANCE;

/// How an image was fitted onto the model's square input: scaled by `scale`, placed at
/// (`left`, `top`); `width`×`height` is the image's own size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f64,
    pub left: u32,
    pub top: u32,
    pub width: u32,
    pub height: u32,
    /// The scaled image's size inside the input.
    pub resized: (u32, u32),
}

impl Letterbox {
    /// The geometry for a `width`×`height` image on a `size`×`size` input: scale
    /// `min(size / width, size / height)`, the scaled sides rounded half to even (Python's
    /// `round`), centred with the odd pixel of padding on the right and bottom.
    pub fn new(width: u32, height: u32, size: u32) -> Self {
        let scale = (f64::from(size) / f64::from(width)).min(f64::from(size) / f64::from(height));
        let side = |length: u32| ((f64::from(length) * scale).round_ties_even() as u32).clamp(1, size);
        let resized = (side(width), side(height));
        Self {
            scale,
            left: (size - resized.0) / 2,
            top: (size - resized.1) / 2,
            width,
            height,
            resized,
        }
    }

    /// A point of the letterboxed input in the image's pixels, clipped to the image.
    pub fn to_image(&self, x: f64, y: f64) -> (f64, f64) {
        (
            ((x - f64::from(self.left)) / self.scale).clamp(0.0, f64::from(self.width)),
            ((y - f64::from(self.top)) / self.scale).clamp(0.0, f64::from(self.height)),
        )
    }
}

/// `image` letterboxed onto a `size`×`size` canvas of [`PAD_LEVEL`] gray: `[size, size, 3]`
/// pixels, the very ones PIL's resize and paste give (see [`crate::image`]), and the geometry.
pub fn letterbox(image: &RgbImage, size: u32) -> (Array3<u8>, Letterbox) {
    let geometry = Letterbox::new(image.width(), image.height(), size);
    let (width, height) = geometry.resized;
    let mut canvas = Array3::from_elem((size as usize, size as usize, 3), PAD_LEVEL);
    let (left, top) = (geometry.left as usize, geometry.top as usize);
    canvas
        .slice_mut(s![top..top + height as usize, left..left + width as usize, ..])
        .assign(&resize(image, width, height));
    (canvas, geometry)
}

/// How a detector's input is made: the image letterboxed onto a `size`×`size` canvas, then
/// normalised per channel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterboxing {
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Letterboxing {
    /// Decodes one image (at most `max_pixels` pixels) and prepares it: the `[3, size,
    /// size]` tensor the model takes, and the geometry its boxes are mapped back through.
    pub fn prepare(&self, bytes: &[u8], max_pixels: u64) -> std::result::Result<(Array3<f32>, Letterbox), ImageError> {
        let (pixels, geometry) = letterbox(&decode_image(bytes, max_pixels)?, self.size);
        Ok((normalized(&pixels, self.mean, self.std), geometry))
    }
}

/// What a detector's answers need beside its labels: how images are letterboxed, and the
/// grid its outputs are laid on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectorInfo {
    pub letterboxing: Letterboxing,
    pub grid: Grid,
}

/// One image's raw outputs, cells row-major: `distances` `[cells, 4]`, `centerness`
/// `[cells, 1]`, `classes` `[cells, labels]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutputs {
    pub distances: Array2<f32>,
    pub centerness: Array2<f32>,
    pub classes: Array2<f32>,
}

impl RawOutputs {
    /// The image's detections (see [`decode`]).
    pub fn decode(&self, grid: Grid, geometry: &Letterbox, options: DecodeOptions) -> Result<Vec<RawDetection>> {
        decode(
            self.distances.view(),
            self.centerness.view(),
            self.classes.view(),
            grid,
            geometry,
            options,
        )
    }
}

/// A box in an image's pixels: `xmax` and `ymax` are the far edges.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub xmin: f64,
    pub ymin: f64,
    pub xmax: f64,
    pub ymax: f64,
}

impl BoundingBox {
    pub fn area(&self) -> f64 {
        (self.xmax - self.xmin).max(0.0) * (self.ymax - self.ymin).max(0.0)
    }

    /// Intersection over union; 0 when they do not overlap or both are empty.
    pub fn iou(&self, other: &Self) -> f64 {
        let width = self.xmax.min(other.xmax) - self.xmin.max(other.xmin);
        let height = self.ymax.min(other.ymax) - self.ymin.max(other.ymin);
        if width <= 0.0 || height <= 0.0 {
            return 0.0;
        }
        let overlap = width * height;
        let union = self.area() + other.area() - overlap;
        if union > 0.0 { overlap / union } else { 0.0 }
    }
}

/// One detection, its label by id (the generated crate names it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawDetection {
    pub label_id: usize,
    pub score: f64,
    pub bbox: BoundingBox,
}

/// What a caller may set of the decoding, as the pipeline's `threshold` and NMS's IoU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeOptions {
    /// Keep (cell, label) pairs scoring at least this.
    pub threshold: f64,
    /// A box is dropped when it overlaps a better one of its label by more than this.
    pub iou_threshold: f64,
}

/// The pipeline's defaults: `threshold` 0.5 (as Hugging Face's object-detection pipeline),
/// NMS at IoU 0.5.
pub const DEFAULT_DECODE: DecodeOptions = DecodeOptions {
    threshold: 0.5,
    iou_threshold: 0.5,
};

/// The grid's geometry: the input's side and the stride of its cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub size: u32,
    pub stride: u32,
}

impl Grid {
    /// Cells per side.
    pub fn side(&self) -> usize {
        (self.size / self.stride) as usize
    }

    pub fn cells(&self) -> usize {
        self.side() * self.side()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One image's detections from its raw outputs (`distances` `[cells, 4]`, `centerness`
/// `[cells, 1]`, `classes` `[cells, labels]`), best first: every (cell, label) at or above
/// the threshold, sorted by score (ties by cell, then label), then class-wise NMS. Outputs
/// of other shapes than the grid's (a model file that is not the one generated for) are an
/// error, never an index out of bounds.
pub fn decode(
    distances: ArrayView2<'_, f32>,
    centerness: ArrayView2<'_, f32>,
    classes: ArrayView2<'_, f32>,
    grid: Grid,
    geometry: &Letterbox,
    options: DecodeOptions,
) -> Result<Vec<RawDetection>> {
    let cells = grid.cells();
    if distances.dim() != (cells, 4) || centerness.dim() != (cells, 1) || classes.nrows() != cells {
        return Err(Error::OutputShape(format!(
            "a {size}×{size} input at stride {stride} has {cells} cells: expected box distances [{cells}, 4], centerness [{cells}, 1] and class logits [{cells}, labels], got {:?}, {:?} and {:?}",
            distances.dim(),
            centerness.dim(),
            classes.dim(),
            size = grid.size,
            stride = grid.stride,
        )));
    }
    let side = grid.side();
    let stride = f64::from(grid.stride);
    let mut candidates = Vec::new();
    for (cell, row) in classes.outer_iter().enumerate() {
        let centre = sigmoid(f64::from(centerness[[cell, 0]]));
        for (label_id, &logit) in row.iter().enumerate() {
            let score = (sigmoid(f64::from(logit)) * centre).sqrt();
            if score < options.threshold {
                continue;
            }
            let (grid_row, column) = (cell / side, cell % side);
            let (cx, cy) = ((column as f64 + 0.5) * stride, (grid_row as f64 + 0.5) * stride);
            let distance = |k: usize| f64::from(distances[[cell, k]]).min(MAX_LOG_DISTANCE).exp() * stride;
            let (xmin, ymin) = geometry.to_image(cx - distance(0), cy - distance(1));
            let (xmax, ymax) = geometry.to_image(cx + distance(2), cy + distance(3));
            candidates.push(RawDetection {
                label_id,
                score,
                bbox: BoundingBox { xmin, ymin, xmax, ymax },
            });
        }
    }
    // Stable: equal scores keep the (cell, label) order they were found in.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(non_maximum_suppression(candidates, options.iou_threshold))
}

/// Class-wise NMS over detections sorted best first: each is kept unless a kept one of its
/// label overlaps it by more than `iou_threshold`.
pub fn non_maximum_suppression(sorted: Vec<RawDetection>, iou_threshold: f64) -> Vec<RawDetection> {
    let mut kept: Vec<RawDetection> = Vec::new();
    for detection in sorted {
        let suppressed = kept
            .iter()
            .any(|other| other.label_id == detection.label_id && other.bbox.iou(&detection.bbox) > iou_threshold);
        if !suppressed {
            kept.push(detection);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn boxed(xmin: f64, ymin: f64, xmax: f64, ymax: f64) -> BoundingBox {
        BoundingBox { xmin, ymin, xmax, ymax }
    }

    #[test]
    fn the_letterbox_geometry_is_pythons() {
        // 320×240 on 256: scale 0.8, 256×192, 32 rows of padding above.
        let wide = Letterbox::new(320, 240, 256);
        assert_eq!((wide.resized, wide.left, wide.top), ((256, 192), 0, 32));
        // 288×224: 224 × 256/288 = 199.11 → 199; (256 − 199) // 2 = 28.
        let odd = Letterbox::new(288, 224, 256);
        assert_eq!((odd.resized, odd.left, odd.top), ((256, 199), 0, 28));
        // Python's round(2.5) is 2: 5×8 on 4 → scale 0.5, 2.5 × 4.
        assert_eq!(Letterbox::new(5, 8, 4).resized, (2, 4));
        assert_eq!(Letterbox::new(1, 1000, 256).resized, (1, 256));
        // Back to the image, clipped to it.
        assert_eq!(wide.to_image(128.0, 32.0), (160.0, 0.0));
        assert_eq!(wide.to_image(-5.0, 300.0), (0.0, 240.0));
    }

    #[test]
    fn letterboxing_pads_with_gray_around_the_resized_image() {
        let image = RgbImage::from_pixel(4, 2, image::Rgb([10, 20, 30]));
        let (pixels, geometry) = letterbox(&image, 8);
        assert_eq!((geometry.resized, geometry.top), ((8, 4), 2));
        for y in 0..8 {
            let expected = if (2..6).contains(&y) {
                [10, 20, 30]
            } else {
                [PAD_LEVEL; 3]
            };
            for x in 0..8 {
                assert_eq!(pixels.slice(s![y, x, ..]).to_vec(), expected.to_vec(), "({x}, {y})");
            }
        }
    }

    /// Every pixel of `python/modelcrate/detector.py`'s `letterbox` of golden images on a
    /// 256 input, as a checksum (Σ pixel × (index mod 251 + 1)) computed by NumPy.
    #[test]
    fn letterboxed_golden_images_are_pils_pixels() {
        let cases = [
            ("giraffe-rgb-97x413.png", (98, 0), 2_310_949_407_u64),
            ("horse-rgb-300x200.png", (0, 42), 1_810_906_425),
            ("elephant-2400x1600.png", (0, 42), 2_138_517_565),
            ("cow-3x2.png", (0, 42), 1_695_322_173),
            ("horse-rgba-120x90.png", (0, 32), 1_691_932_075),
        ];
        for (name, (left, top), expected) in cases {
            let path = format!("{}/../golden/animal-shapes/images/{name}", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(&path).unwrap();
            let image = crate::image::decode(&bytes, crate::image::DEFAULT_MAX_PIXELS).unwrap();
            let (pixels, geometry) = letterbox(&image, 256);
            assert_eq!((geometry.left, geometry.top), (left, top), "{name}");
            let checksum: u64 = pixels
                .iter()
                .enumerate()
                .map(|(index, &value)| u64::from(value) * (index as u64 % 251 + 1))
                .sum();
            assert_eq!(checksum, expected, "{name}");
        }
    }

    #[test]
    fn iou_of_boxes() {
        let a = boxed(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&boxed(5.0, 0.0, 15.0, 10.0)), 50.0 / 150.0);
        assert_eq!(a.iou(&boxed(10.0, 0.0, 20.0, 10.0)), 0.0);
        assert_eq!(boxed(3.0, 3.0, 3.0, 3.0).iou(&boxed(3.0, 3.0, 3.0, 3.0)), 0.0);
    }

    #[test]
    fn nms_is_class_wise_and_keeps_the_better_box() {
        let detection = |label_id, score, bbox| RawDetection { label_id, score, bbox };
        let sorted = vec![
            detection(0, 0.9, boxed(0.0, 0.0, 10.0, 10.0)),
            detection(1, 0.8, boxed(0.0, 0.0, 10.0, 10.0)), // another label: kept
            detection(0, 0.7, boxed(1.0, 0.0, 11.0, 10.0)), // IoU 0.82 with the first: dropped
            detection(0, 0.6, boxed(5.0, 0.0, 15.0, 10.0)), // IoU 1/3: kept
        ];
        let kept = non_maximum_suppression(sorted.clone(), 0.5);
        assert_eq!(kept.iter().map(|d| d.score).collect::<Vec<_>>(), vec![0.9, 0.8, 0.6]);
        // At IoU 0.3 the third one goes too; at 0.9 none is dropped.
        assert_eq!(non_maximum_suppression(sorted.clone(), 0.3).len(), 2);
        assert_eq!(non_maximum_suppression(sorted, 0.9).len(), 4);
    }

    #[test]
    fn decoding_turns_cells_into_boxes_in_the_image() {
        // A 32×32 input with stride 16: 2×2 cells. One image 64×32 letterboxed: scale 0.5,
        // 32×16 placed 8 rows down.
        let grid = Grid { size: 32, stride: 16 };
        let geometry = Letterbox::new(64, 32, 32);
        assert_eq!((geometry.scale, geometry.top), (0.5, 8));
        let mut distances = Array2::<f32>::zeros((4, 2 * 2));
        let mut centerness = Array2::<f32>::from_elem((4, 1), -20.0);
        let mut classes = Array2::<f32>::from_elem((4, 3), -20.0);
        // Cell 3 (row 1, column 1, centre (24, 24)): distances of one stride each way,
        // label 2 sure, centerness sure.
        distances.row_mut(3).fill(0.0);
        centerness[[3, 0]] = 20.0;
        classes[[3, 2]] = 20.0;
        let found = decode(
            distances.view(),
            centerness.view(),
            classes.view(),
            grid,
            &geometry,
            DEFAULT_DECODE,
        )
        .unwrap();
        assert_eq!(found.len(), 1);
        let only = found[0];
        assert_eq!(only.label_id, 2);
        assert!((only.score - 1.0).abs() < 1e-8, "{}", only.score);
        // (8, 8)–(40, 40) in the input → ((8 − 0)/0.5, (8 − 8)/0.5) = (16, 0) to
        // (80, 64) clipped to (64, 32).
        assert_eq!(only.bbox, boxed(16.0, 0.0, 64.0, 32.0));
        // The threshold is inclusive: a score of exactly sqrt(0.5 × 0.5) = 0.5 is kept.
        classes[[3, 2]] = 0.0;
        centerness[[3, 0]] = 0.0;
        let options = DecodeOptions {
            threshold: 0.5,
            iou_threshold: 0.5,
        };
        let half = decode(
            distances.view(),
            centerness.view(),
            classes.view(),
            grid,
            &geometry,
            options,
        )
        .unwrap();
        assert_eq!(half.len(), 1);
        assert_eq!(half[0].score, 0.5);
        // Outputs that do not fit the grid are refused, naming both shapes.
        let short = Array2::<f32>::zeros((3, 4));
        let error = decode(
            short.view(),
            centerness.view(),
            classes.view(),
            grid,
            &geometry,
            options,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("expected box distances [4, 4]") && error.contains("(3, 4)"),
            "{error}"
        );
    }
}
