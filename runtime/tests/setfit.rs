//! A SetFit classifier is two sessions, and `load` checks both halves: the body's
//! signature and pooling, the head's signature. Whatever differs is refused by name.
//!
//! Needs the exported news-topic-fewshot and news-topic models and `ORT_DYLIB_PATH`
//! (`cargo xtask test`).

use std::path::PathBuf;

use modelcrate_runtime::classification::{ProblemType, SetFitHeadSpec, TextClassifier, TextClassifierSpec};
use modelcrate_runtime::embedding::{Pooler, Pooling};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::{ClassificationFunction, LoadOptions, VariantChoice};

const TEXT: &[Option<i64>] = &[None, None];
const BODY_INPUTS: &[TensorSpec] = &[
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
const BODY_OUTPUTS: &[TensorSpec] = &[TensorSpec {
    name: "last_hidden_state",
    dtype: DType::Float32,
    dims: &[None, None, Some(384)],
}];
const HEAD_INPUTS: &[TensorSpec] = &[TensorSpec {
    name: "sentence_embedding",
    dtype: DType::Float32,
    dims: &[None, Some(384)],
}];
const HEAD_OUTPUTS: &[TensorSpec] = &[
    TensorSpec {
        name: "label",
        dtype: DType::Int64,
        dims: &[None],
    },
    TensorSpec {
        name: "logits",
        dtype: DType::Float32,
        dims: &[None, Some(5)],
    },
];
const LABELS: &[&str] = &["business", "entertainment", "politics", "sports", "tech"];
const POOLER: Pooler = Pooler {
    hidden_output: "last_hidden_state",
    dimension: 384,
    pooling: Pooling::Mean,
    normalize: true,
};
const HEAD: SetFitHeadSpec = SetFitHeadSpec {
    body: POOLER,
    signature: Signature {
        inputs: HEAD_INPUTS,
        outputs: HEAD_OUTPUTS,
    },
    embedding_input: "sentence_embedding",
};

fn onnx_dir(model: &str) -> PathBuf {
    let artifacts = std::env::var_os("MODELCRATE_ARTIFACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts"),
        PathBuf::from,
    );
    artifacts.join(model).join("onnx")
}

fn spec(outputs: &'static [TensorSpec], setfit: Option<SetFitHeadSpec>) -> TextClassifierSpec {
    TextClassifierSpec {
        name: "news-topic-fewshot",
        signature: Signature {
            inputs: BODY_INPUTS,
            outputs,
        },
        logits_output: "logits",
        labels: LABELS,
        max_length: 128,
        problem_type: ProblemType::SingleLabel,
        setfit,
    }
}

fn load(model: &str, spec: TextClassifierSpec) -> modelcrate_runtime::Result<TextClassifier> {
    TextClassifier::load(
        &onnx_dir(model),
        spec,
        &LoadOptions::one_session(VariantChoice::Serving),
    )
}

fn refusal(model: &str, spec: TextClassifierSpec) -> String {
    match load(model, spec) {
        Ok(_) => panic!("{model} loaded against a spec it does not match"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn both_sessions_load_and_the_default_scores_are_probabilities() {
    let classifier =
        load("news-topic-fewshot", spec(BODY_OUTPUTS, Some(HEAD))).expect("the export matches its own spec");
    assert_eq!(classifier.info().head, Some(HEAD.signature));
    let texts = [
        "Shares fell sharply after the bank's profit warning",
        "The striker scored twice",
    ];
    let scores = classifier.scores(&texts, None).expect("the two sessions run");
    for row in &scores {
        assert_eq!(row.len(), LABELS.len());
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
    }
    // Softmax is the default because the head's logits are its decision function.
    let logits = classifier.logits(&texts).expect("logits");
    let softmax = ClassificationFunction::Softmax.apply(&logits.row(0).to_vec());
    assert_eq!(softmax, scores[0]);
}

#[test]
fn a_head_of_another_width_is_refused_by_name() {
    const WIDE: &[TensorSpec] = &[TensorSpec {
        name: "sentence_embedding",
        dtype: DType::Float32,
        dims: &[None, Some(768)],
    }];
    let head = SetFitHeadSpec {
        signature: Signature {
            inputs: WIDE,
            outputs: HEAD_OUTPUTS,
        },
        ..HEAD
    };
    let message = refusal("news-topic-fewshot", spec(BODY_OUTPUTS, Some(head)));
    assert!(message.contains("head.onnx"), "{message}");
    assert!(
        message.contains("input `sentence_embedding` has dimensions [?, 384], expected [?, 768]"),
        "{message}"
    );
}

#[test]
fn another_pooling_is_refused_by_name() {
    let head = SetFitHeadSpec {
        body: Pooler {
            pooling: Pooling::Cls,
            ..POOLER
        },
        ..HEAD
    };
    let message = refusal("news-topic-fewshot", spec(BODY_OUTPUTS, Some(head)));
    assert!(message.contains("pooling.json"), "{message}");
    assert!(
        message.contains("pooling mean normalize true dimension 384, expected pooling cls"),
        "{message}"
    );
}

#[test]
fn a_body_without_its_head_or_a_classifier_without_one_is_refused() {
    // The SetFit folder read as a one-graph classifier: its body has no logits.
    const LOGITS: &[TensorSpec] = &[TensorSpec {
        name: "logits",
        dtype: DType::Float32,
        dims: &[None, Some(5)],
    }];
    let message = refusal("news-topic-fewshot", spec(LOGITS, None));
    assert!(
        message.contains(r#"outputs are ["last_hidden_state"], expected ["logits"]"#),
        "{message}"
    );
    // A fine-tuned classifier's folder read as a SetFit model: no pooling, no head.
    let message = refusal("news-topic", spec(BODY_OUTPUTS, Some(HEAD)));
    assert!(message.contains("pooling.json"), "{message}");
}
