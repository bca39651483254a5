//! Image preprocessing, per image, as an image request costs before `session.run`:
//! decoding a golden JPEG photograph (640×427) and a 28×28 PNG, PIL's bilinear resize and
//! centre crop to 224×224, and normalisation into the model's tensor. Reads only the
//! committed golden images.

mod golden;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modelcrate_runtime::image::{DEFAULT_MAX_PIXELS, Preprocessing, decode, resize_crop};

const PREPROCESSING: Preprocessing = Preprocessing {
    resize_shortest: 256,
    crop: 224,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
};

fn preprocessing(c: &mut Criterion) {
    let photo = golden::image("china.jpg");
    let silhouette = golden::image("zebra-28.png");
    c.bench_function("decode JPEG 640x427", |b| {
        b.iter(|| decode(black_box(&photo), DEFAULT_MAX_PIXELS))
    });
    let decoded = decode(&photo, DEFAULT_MAX_PIXELS).expect("the golden photograph decodes");
    c.bench_function("PIL bilinear resize + crop 640x427 -> 224x224", |b| {
        b.iter(|| resize_crop(black_box(&decoded), 256, 224))
    });
    let pixels = PREPROCESSING.pixels(&decoded);
    c.bench_function("normalise 224x224 to NCHW f32", |b| {
        b.iter(|| PREPROCESSING.tensor(black_box(&pixels)))
    });
    c.bench_function("prepare JPEG 640x427 (all of it)", |b| {
        b.iter(|| PREPROCESSING.prepare(black_box(&photo), DEFAULT_MAX_PIXELS))
    });
    c.bench_function("prepare PNG 28x28 (all of it)", |b| {
        b.iter(|| PREPROCESSING.prepare(black_box(&silhouette), DEFAULT_MAX_PIXELS))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = preprocessing
}
criterion_main!(benches);
