//! The detector's decoding and NMS give what `python/modelcrate/detector.py`'s `decode`
//! gives on the same raw outputs: 256 cells × 10 labels from a fixed LCG (the one the
//! detection benchmark uses), letterboxed from 640×427, threshold 0.3, NMS at IoU 0.5. The
//! expected figures were printed by NumPy from the same LCG, computed in float64 from the
//! float32 outputs; `exp` may differ in its last bit between libm and NumPy, hence 1e-9.

#[path = "../benches/lcg/mod.rs"]
mod lcg;

use lcg::Lcg;
use modelcrate_runtime::detection::{DecodeOptions, Grid, Letterbox, decode};
use ndarray::Array2;

#[test]
fn decoding_random_outputs_gives_numpys_detections() {
    let mut lcg = Lcg(7);
    let cells = 256;
    let distances = Array2::from_shape_fn((cells, 4), |_| lcg.next() * 2.0);
    let centerness = Array2::from_shape_fn((cells, 1), |_| lcg.next() * 4.0 - 2.0);
    let classes = Array2::from_shape_fn((cells, 10), |_| lcg.next() * 8.0 - 6.0);
    let options = DecodeOptions {
        threshold: 0.3,
        iou_threshold: 0.5,
    };
    let grid = Grid { size: 256, stride: 16 };
    let found = decode(
        distances.view(),
        centerness.view(),
        classes.view(),
        grid,
        &Letterbox::new(640, 427, 256),
        options,
    )
    .unwrap();
    assert_eq!(found.len(), 630);
    let total: f64 = found.iter().map(|d| d.score).sum();
    assert!((total - 358.734_166_181_204_2).abs() < 1e-9, "{total}");
    let expected = [
        (
            3,
            0.873_345_117_211_181_9,
            [
                185.018_278_182_825_1,
                198.453_440_831_356_72,
                306.968_364_300_640_8,
                317.492_005_030_800_04,
            ],
        ),
        (
            2,
            0.871_212_835_505_873_8,
            [
                151.879_575_796_109_8,
                0.0,
                545.438_809_798_797_8,
                148.010_907_450_675_72,
            ],
        ),
        (
            0,
            0.868_951_609_146_614_2,
            [
                185.018_278_182_825_1,
                198.453_440_831_356_72,
                306.968_364_300_640_8,
                317.492_005_030_800_04,
            ],
        ),
        (
            4,
            0.868_497_723_718_962_5,
            [
                380.094_472_220_663_14,
                0.0,
                554.632_050_703_851_2,
                223.401_223_821_907_62,
            ],
        ),
    ];
    for (detection, (label_id, score, bbox)) in found.iter().zip(expected) {
        assert_eq!(detection.label_id, label_id);
        assert!((detection.score - score).abs() < 1e-9, "{detection:?}");
        let got = [
            detection.bbox.xmin,
            detection.bbox.ymin,
            detection.bbox.xmax,
            detection.bbox.ymax,
        ];
        for (got, want) in got.iter().zip(bbox) {
            assert!((got - want).abs() < 1e-9, "{detection:?}");
        }
    }
    let last = found.last().unwrap();
    assert_eq!(last.label_id, 2);
    assert!((last.score - 0.300_496_492_581_637_96).abs() < 1e-9, "{last:?}");
}
