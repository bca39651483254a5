//! An artifact whose signature or labels differ from what a crate was generated from
//! is refused with an error that says what differs.
//!
//! Needs the exported news-topic model and `ORT_DYLIB_PATH` (`cargo xtask test`).

use std::path::PathBuf;

use modelcrate_runtime::classification::{ProblemType, TextClassifier, TextClassifierSpec};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::variants::read_variants;
use modelcrate_runtime::{Error, LoadOptions, VariantChoice};

const TEXT: &[Option<i64>] = &[None, None];
const INPUTS: &[TensorSpec] = &[
    TensorSpec {
        name: "input_ids",
        dtype: DType::Int64,
        dims: TEXT,
    },
    TensorSpec {
        name: "attention_mask",
        dtype: DType::Int64,
        dims: TEXT,
    },
    TensorSpec {
        name: "token_type_ids",
        dtype: DType::Int64,
        dims: TEXT,
    },
];
const LOGITS: &[TensorSpec] = &[TensorSpec {
    name: "logits",
    dtype: DType::Float32,
    dims: &[None, Some(5)],
}];
const LABELS: &[&str] = &["business", "entertainment", "politics", "sports", "tech"];

fn onnx_dir() -> PathBuf {
    let artifacts = std::env::var_os("MODELCRATE_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts"),
        PathBuf::from,
    );
    artifacts.join("news-topic/onnx")
}

fn spec(
    inputs: &'static [TensorSpec],
    outputs: &'static [TensorSpec],
    labels: &'static [&'static str],
) -> TextClassifierSpec {
    TextClassifierSpec {
        name: "news-topic",
        signature: Signature { inputs, outputs },
        logits_output: "logits",
        labels,
        max_length: 128,
        problem_type: ProblemType::SingleLabel,
        setfit: None,
    }
}

fn refusal(spec: TextClassifierSpec) -> String {
    refusal_of("fp32", spec)
}

fn refusal_of(variant: &str, spec: TextClassifierSpec) -> String {
    match TextClassifier::load(
        &onnx_dir(),
        spec,
        &LoadOptions::one_session(VariantChoice::Named(variant.into())),
    ) {
        Ok(_) => panic!("a mismatched artifact was accepted"),
        Err(error @ Error::SignatureMismatch { .. }) => error.to_string(),
        Err(other) => panic!("refused for another reason: {other}"),
    }
}

#[test]
fn the_matching_signature_loads() {
    TextClassifier::load(
        &onnx_dir(),
        spec(INPUTS, LOGITS, LABELS),
        &LoadOptions::one_session(VariantChoice::Serving),
    )
    .expect("the exported model matches its own signature");
}

#[test]
fn a_different_label_count_is_refused() {
    const FOUR: &[TensorSpec] = &[TensorSpec {
        name: "logits",
        dtype: DType::Float32,
        dims: &[None, Some(4)],
    }];
    let message = refusal(spec(INPUTS, FOUR, &["business", "entertainment", "politics", "sports"]));
    assert!(message.contains("id2label"), "{message}");
    let message = refusal(spec(INPUTS, FOUR, LABELS));
    assert!(
        message.contains("output `logits` has dimensions [?, 5], expected [?, 4]"),
        "{message}"
    );
}

#[test]
fn renamed_or_retyped_tensors_are_refused() {
    const RENAMED: &[TensorSpec] = &[TensorSpec {
        name: "scores",
        dtype: DType::Float32,
        dims: &[None, Some(5)],
    }];
    let message = refusal(spec(INPUTS, RENAMED, LABELS));
    assert!(
        message.contains(r#"outputs are ["logits"], expected ["scores"]"#),
        "{message}"
    );
    const INT32: &[TensorSpec] = &[
        TensorSpec {
            name: "input_ids",
            dtype: DType::Int32,
            dims: TEXT,
        },
        TensorSpec {
            name: "attention_mask",
            dtype: DType::Int64,
            dims: TEXT,
        },
        TensorSpec {
            name: "token_type_ids",
            dtype: DType::Int64,
            dims: TEXT,
        },
    ];
    let message = refusal(spec(INT32, LOGITS, LABELS));
    assert!(
        message.contains("input `input_ids` is int64, expected int32"),
        "{message}"
    );
}

#[test]
fn relabelled_config_is_refused() {
    let message = refusal(spec(
        INPUTS,
        LOGITS,
        &["business", "entertainment", "politics", "sport", "tech"],
    ));
    assert!(message.contains("config.json"), "{message}");
}

#[test]
fn every_variant_is_checked_against_the_signature_like_the_export() {
    const RENAMED: &[TensorSpec] = &[TensorSpec {
        name: "scores",
        dtype: DType::Float32,
        dims: &[None, Some(5)],
    }];
    let variants = read_variants(&onnx_dir())
        .expect("variants.json is readable")
        .expect("variants.json (cargo xtask optimize)");
    for made in variants.made() {
        let message = refusal_of(&made.name, spec(INPUTS, RENAMED, LABELS));
        let file = made.file.as_deref().unwrap_or_default();
        assert!(
            message.contains(file) && message.contains(r#"outputs are ["logits"], expected ["scores"]"#),
            "{}: {message}",
            made.name
        );
    }
}
