//! An image–text model's work after its towers, per image: zero-shot scores over
//! candidate labels (a similarity each, then the softmax) for the ten labels of a typical
//! request and a thousand of the largest one, and one similarity, on 256-dimensional unit
//! vectors made by a fixed LCG, so that every run measures the same work.

mod lcg;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lcg::Lcg;
use modelcrate_runtime::embedding::l2_normalize;
use modelcrate_runtime::image_text::{ImageEmbedding, TextEmbedding, similarity, zero_shot_scores};

const DIMENSION: usize = 256;
/// exp(logit_scale) of a CLIP-style model.
const SCALE: f32 = 14.5;

fn unit(lcg: &mut Lcg) -> Vec<f32> {
    let mut vector: Vec<f32> = (0..DIMENSION).map(|_| lcg.next() * 2.0 - 1.0).collect();
    l2_normalize(&mut vector);
    vector
}

fn image_text(c: &mut Criterion) {
    let mut lcg = Lcg(11);
    let image = ImageEmbedding(unit(&mut lcg));
    let texts: Vec<TextEmbedding> = (0..1000).map(|_| TextEmbedding(unit(&mut lcg))).collect();
    c.bench_function("similarity, 256 dimensions", |b| {
        b.iter(|| similarity(black_box(&image), black_box(&texts[0])))
    });
    for candidates in [10, 1000] {
        c.bench_function(&format!("zero-shot scores over {candidates} candidates"), |b| {
            b.iter(|| zero_shot_scores(black_box(&image), black_box(&texts[..candidates]), SCALE))
        });
    }
}

criterion_group!(benches, image_text);
criterion_main!(benches);
