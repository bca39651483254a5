//! A detector's work around `session.run`, per image: letterboxing a golden JPEG photograph
//! (640×427) onto a 256×256 input, decoding a 16×16 grid of raw outputs for ten labels
//! into scored boxes, and class-wise NMS over many overlapping candidates (the worst case:
//! a low threshold, as a mAP evaluation uses). Outputs are made by a fixed LCG, so every
//! run measures the same work.

mod golden;
mod lcg;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lcg::Lcg;
use modelcrate_runtime::detection::{
    BoundingBox, DecodeOptions, Grid, Letterbox, RawDetection, decode, letterbox, non_maximum_suppression,
};
use modelcrate_runtime::image::{DEFAULT_MAX_PIXELS, decode as decode_image};
use ndarray::Array2;

const GRID: Grid = Grid { size: 256, stride: 16 };
const LABELS: usize = 10;

fn detection(c: &mut Criterion) {
    let photo = decode_image(&golden::image("china.jpg"), DEFAULT_MAX_PIXELS).expect("the golden photograph decodes");
    c.bench_function("letterbox JPEG 640x427 -> 256x256", |b| {
        b.iter(|| letterbox(black_box(&photo), 256))
    });

    let mut lcg = Lcg(7);
    let cells = GRID.cells();
    let distances = Array2::from_shape_fn((cells, 4), |_| lcg.next() * 2.0);
    let centerness = Array2::from_shape_fn((cells, 1), |_| lcg.next() * 4.0 - 2.0);
    let classes = Array2::from_shape_fn((cells, LABELS), |_| lcg.next() * 8.0 - 6.0);
    let geometry = Letterbox::new(640, 427, 256);
    for threshold in [0.5, 0.05] {
        let options = DecodeOptions {
            threshold,
            iou_threshold: 0.5,
        };
        let found = decode(
            distances.view(),
            centerness.view(),
            classes.view(),
            GRID,
            &geometry,
            options,
        )
        .expect("the outputs fit the grid")
        .len();
        c.bench_function(
            &format!("decode 16x16 cells x {LABELS} labels, threshold {threshold} ({found} kept)"),
            |b| {
                b.iter(|| {
                    decode(
                        black_box(distances.view()),
                        centerness.view(),
                        classes.view(),
                        GRID,
                        &geometry,
                        options,
                    )
                })
            },
        );
    }

    // 500 candidates of 3 labels clustered on 20 objects, sorted by score.
    let mut candidates: Vec<RawDetection> = (0..500)
        .map(|i| {
            let (x, y) = (f64::from((i % 20) as u32 * 30), f64::from((i % 20) as u32 * 20));
            let jitter = f64::from(lcg.next()) * 10.0;
            RawDetection {
                label_id: i % 3,
                score: f64::from(lcg.next()),
                bbox: BoundingBox {
                    xmin: x + jitter,
                    ymin: y + jitter,
                    xmax: x + 40.0 + jitter,
                    ymax: y + 40.0 + jitter,
                },
            }
        })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    c.bench_function("class-wise NMS of 500 overlapping boxes", |b| {
        b.iter(|| non_maximum_suppression(black_box(candidates.clone()), 0.5))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = detection
}
criterion_main!(benches);
