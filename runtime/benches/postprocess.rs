//! Post-processing after `session.run`, per batch of 32: the pipeline's softmax and
//! ranking for a 5-label classifier, mean pooling and L2 normalisation of 128-token
//! MiniLM outputs, and a top-10 search over 445 embeddings. No model files needed.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modelcrate_runtime::ClassificationFunction;
use modelcrate_runtime::classification::ranked;
use modelcrate_runtime::embedding::{Pooling, l2_normalize, pool_tokens, top_k};
use modelcrate_runtime::text::EncodedBatch;
use ndarray::{Array2, Array3};

const BATCH: usize = 32;
const TOKENS: usize = 128;
const HIDDEN: usize = 384;

/// Deterministic values in [-1, 1), so runs compare.
fn values(count: usize) -> Vec<f32> {
    (0..count)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 2001) as f32 / 1000.0) - 1.0)
        .collect()
}

fn classification(c: &mut Criterion) {
    let logits: Vec<Vec<f32>> = values(BATCH * 5)
        .chunks(5)
        .map(|row| row.iter().map(|v| v * 6.0).collect())
        .collect();
    c.bench_function("softmax + rank all, 32 rows of 5 labels", |b| {
        b.iter(|| {
            for row in &logits {
                let scores = ClassificationFunction::Softmax.apply(black_box(row));
                black_box(ranked(&scores, None));
            }
        })
    });
}

fn embedding(c: &mut Criterion) {
    let hidden = Array3::from_shape_vec((BATCH, TOKENS, HIDDEN), values(BATCH * TOKENS * HIDDEN)).expect("shape");
    // Mixed lengths, as a padded batch of real texts has.
    let lengths: Vec<usize> = (0..BATCH).map(|row| 16 + row * 112 / BATCH).collect();
    let mut attention_mask = Array2::zeros((BATCH, TOKENS));
    for (row, &length) in lengths.iter().enumerate() {
        attention_mask.row_mut(row).iter_mut().take(length).for_each(|m| *m = 1);
    }
    let batch = EncodedBatch {
        input_ids: Array2::zeros((BATCH, TOKENS)),
        token_type_ids: Array2::zeros((BATCH, TOKENS)),
        attention_mask,
        lengths,
    };
    c.bench_function("mean pooling + L2 normalise, 32 × 128 × 384", |b| {
        b.iter(|| {
            for mut vector in pool_tokens(black_box(hidden.view()), &batch, Pooling::Mean) {
                l2_normalize(&mut vector);
                black_box(vector);
            }
        })
    });
    let corpus: Vec<Vec<f32>> = values(445 * HIDDEN).chunks(HIDDEN).map(<[f32]>::to_vec).collect();
    let query = values(HIDDEN + 7)[7..].to_vec();
    c.bench_function("top-10 cosine search over 445 × 384", |b| {
        b.iter(|| black_box(top_k(black_box(&query), &corpus, 10)))
    });
}

criterion_group!(benches, classification, embedding);
criterion_main!(benches);
