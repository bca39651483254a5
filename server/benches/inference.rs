//! `session.run` of every generated model's serving variant (as `serving.json` names it)
//! on pre-tokenized test-split articles, at batch 1 and batch 32, one session with one
//! intra-op thread: the inference cost alone, without tokenization or post-processing.
//! Needs the main job's artifacts and `ORT_DYLIB_PATH`; models that cannot load are
//! skipped with the reason.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use modelcrate_models::MODELS;
use modelcrate_runtime::LoadOptions;
use modelcrate_server::{models, test_split};

fn artifacts() -> PathBuf {
    std::env::var_os("MODELCRATE_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts"),
        PathBuf::from,
    )
}

fn inference(c: &mut Criterion) {
    let options = LoadOptions {
        sessions: 1,
        intra_threads: 1,
        ..LoadOptions::default()
    };
    for entry in MODELS {
        let loaded = models::load(entry, &artifacts(), &options)
            .and_then(|model| Ok((test_split::texts(&artifacts(), entry.name)?, model)));
        let (rows, model) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                eprintln!("skipped {}: {error:#}", entry.name);
                continue;
            }
        };
        let texts: Vec<&str> = rows.iter().take(32).map(String::as_str).collect();
        let variant = &model.info().variant.name;
        for size in [1, 32] {
            let Ok(batch) = model.encoder().encode(&texts[..size.min(texts.len())]) else {
                eprintln!("skipped {}: its tokenizer failed on the test split", entry.name);
                continue;
            };
            c.bench_function(&format!("{} ({variant}) session.run, batch {size}", entry.name), |b| {
                b.iter(|| black_box(model.run_encoded(black_box(&batch))))
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = inference
}
criterion_main!(benches);
