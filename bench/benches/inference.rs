//! `session.run` of every generated model's serving variant (as `serving.json` names it)
//! on pre-tokenized test-split texts or prepared test-split images, at batch 1 and batch 32, one session with one
//! intra-op thread: the inference cost alone, without tokenization or post-processing.
//! Needs the main job's artifacts and `ORT_DYLIB_PATH`; models that cannot load are
//! skipped with the reason.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use modelcrate_core::catalog;
use modelcrate_models::MODELS;
use modelcrate_parity::test_split::{self, TestInputs};
use modelcrate_runtime::image::{DEFAULT_MAX_PIXELS, stack};
use modelcrate_runtime::{AnswerOptions, Lane, LoadOptions, VariantChoice};

fn artifacts() -> PathBuf {
    std::env::var_os("MODELCRATE_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts"),
        PathBuf::from,
    )
}

fn inference(c: &mut Criterion) {
    let options = LoadOptions::one_session(VariantChoice::Serving);
    for entry in MODELS {
        let loaded = catalog::load(entry, &artifacts(), &options)
            .and_then(|model| Ok((test_split::inputs(&artifacts(), entry.name, entry.task)?, model)));
        let (inputs, model) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                eprintln!("skipped {}: {error:#}", entry.name);
                continue;
            }
        };
        let variant = model.info().variant.name.clone();
        for size in [1, 32] {
            let name = format!("{} ({variant}) session.run, batch {size}", entry.name);
            match &inputs {
                TestInputs::Images(images) => {
                    let prepared: Option<Result<Vec<_>, _>> = images
                        .iter()
                        .take(size)
                        .map(|bytes| model.info().prepare_image(bytes, DEFAULT_MAX_PIXELS))
                        .collect();
                    let Some(Ok(prepared)) = prepared else {
                        eprintln!(
                            "skipped {}: a test image does not decode, or it takes no images",
                            entry.name
                        );
                        continue;
                    };
                    let batch = stack(&prepared.iter().collect::<Vec<_>>());
                    c.bench_function(&name, |b| {
                        b.iter(|| black_box(model.run_images(black_box(&batch), Lane::Any)))
                    });
                }
                TestInputs::Texts(texts) => {
                    let texts: Vec<&str> = texts.iter().take(size).map(String::as_str).collect();
                    let Ok(batch) = model.text_encoder().and_then(|encoder| encoder.encode(&texts)) else {
                        eprintln!("skipped {}: its tokenizer failed on the test split", entry.name);
                        continue;
                    };
                    c.bench_function(&name, |b| {
                        b.iter(|| black_box(model.run_encoded(black_box(&batch), Lane::Any)))
                    });
                }
                TestInputs::Questions(rows) => {
                    // A question's windows, as the engine runs them.
                    let windows: Result<Vec<_>, _> = rows
                        .iter()
                        .take(size)
                        .map(|row| model.windows(&row.question, &row.context, &AnswerOptions::default()))
                        .collect();
                    let (Ok(windows), Ok(encoder)) = (windows, model.text_encoder()) else {
                        eprintln!("skipped {}: its test questions could not be windowed", entry.name);
                        continue;
                    };
                    let batch = encoder.pad(&windows.into_iter().flatten().collect::<Vec<_>>());
                    c.bench_function(&name, |b| {
                        b.iter(|| black_box(model.run_encoded(black_box(&batch), Lane::Any)))
                    });
                }
            }
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = inference
}
criterion_main!(benches);
