//! A distilled student's variants are held to the student's own PyTorch outputs and to the
//! teacher's test metric: the gate `modelcrate-parity` runs and the reload canary repeats.
//! news-topic (a classifier) and news-embed (a sentence-embedding model) have students
//! (`[distill]` in their specs); these tests load their variants from the pipeline's
//! artifacts and check that the gate reads the teacher's figure from the student's
//! reference and holds the student to it (the bound itself, one point below, is unit-tested
//! beside the gate). release-ner (a token classifier) has none, as no student of it held
//! its gate (its spec says why); its FP32 export stands in for one against a scratch copy
//! of its golden reference with a teacher's figure added.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use modelcrate_core::{Catalog, catalog};
use modelcrate_parity as parity;
use modelcrate_runtime::{LoadOptions, TaskModel, VariantChoice};
use serde_json::Value;

const CATALOG: Catalog = Catalog::new(modelcrate_models::MODELS);

/// The workspace root (this crate's parent).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate is in the workspace")
        .to_path_buf()
}

/// The pipeline's artifacts: `MODELCRATE_ARTIFACTS`, else the workspace's.
fn artifacts() -> PathBuf {
    std::env::var_os("MODELCRATE_ARTIFACTS").map_or_else(|| workspace().join("artifacts"), PathBuf::from)
}

const MODEL: &str = "news-topic";
const EMBEDDER: &str = "news-embed";
const TAGGER: &str = "release-ner";

fn load_of(model: &str, variant: &str) -> Arc<dyn TaskModel> {
    let options = LoadOptions::one_session(VariantChoice::Named(variant.into()));
    catalog::load(CATALOG.entry(model).unwrap(), &artifacts(), &options)
        .unwrap_or_else(|error| panic!("{model} variant {variant} loads: {error}"))
}

fn load(variant: &str) -> Arc<dyn TaskModel> {
    load_of(MODEL, variant)
}

fn golden_of(model: &str) -> PathBuf {
    workspace().join("golden").join(model)
}

fn golden() -> PathBuf {
    golden_of(MODEL)
}

/// The teacher's test `metric` in the student reference of `model`, as the gate reads it.
fn teacher_figure(model: &str, metric: &str) -> f64 {
    let path = artifacts().join(model).join("student/reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} (cargo xtask distill)", path.display()));
    let reference: Value = serde_json::from_str(&text).unwrap();
    reference["teacher"]["test_split"][metric].as_f64().unwrap()
}

fn teacher_row(outcome: &parity::Outcome) -> &parity::Row {
    outcome
        .rows
        .iter()
        .find(|row| row.check.contains("vs the teacher's FP32"))
        .expect("a student's gate has the teacher row")
}

#[test]
fn a_students_variant_is_checked_against_its_own_reference_and_the_teacher() {
    let student = load("student-int8");
    assert!(student.info().variant.student.is_some(), "variants.json marks it");
    let artifacts = artifacts();
    assert_eq!(
        parity::reference_path(student.info(), MODEL, &golden(), &artifacts),
        artifacts.join(MODEL).join("student/reference.json")
    );
    let outcome = parity::check(&student, MODEL, &golden(), &artifacts).unwrap();
    assert!(outcome.passed(), "{:?}", outcome.failures);
    assert!(teacher_row(&outcome).pass);
    assert_eq!(outcome.checked.metric.teacher, Some(teacher_figure(MODEL, "accuracy")));
    // The teacher's own variants keep the golden reference, and have no teacher row.
    let teacher = load("int8");
    assert_eq!(
        parity::reference_path(teacher.info(), MODEL, &golden(), &artifacts),
        golden().join("reference.json")
    );
    let outcome = parity::check(&teacher, MODEL, &golden(), &artifacts).unwrap();
    assert!(!outcome.rows.iter().any(|row| row.check.contains("teacher")));
}

#[test]
fn an_embedding_students_recall_is_held_to_its_teachers() {
    // The student's FP32 export: its own bounds are the exact ones.
    let student = load_of(EMBEDDER, "student");
    assert!(
        student.info().variant.student.is_some(),
        "variants.student.json marks it"
    );
    let golden = golden_of(EMBEDDER);
    let real = parity::check(&student, EMBEDDER, &golden, &artifacts()).unwrap();
    assert!(real.passed(), "{:?}", real.failures);
    assert!(teacher_row(&real).pass);
    assert_eq!(
        real.checked.metric.teacher,
        Some(teacher_figure(EMBEDDER, "recall_at_10"))
    );
}

/// A scratch copy of `golden/<model>/` whose reference carries a teacher's `metric`
/// of `teacher` over its test split, as a student's reference does.
fn scratch_golden(model: &str, test: &str, metric: &str, teacher: f64) -> PathBuf {
    let scratch = std::env::temp_dir().join(format!("modelcrate-golden-{model}-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let text = std::fs::read_to_string(golden_of(model).join("reference.json")).unwrap();
    let mut reference: Value = serde_json::from_str(&text).unwrap();
    let examples = reference["test_split"]["examples"].clone();
    reference["teacher"] = serde_json::json!({"test_split": {"examples": examples, metric: teacher}});
    std::fs::write(scratch.join("reference.json"), reference.to_string()).unwrap();
    std::fs::copy(golden_of(model).join("inputs.json"), scratch.join("inputs.json")).unwrap();
    scratch
}

#[test]
fn a_token_classifiers_student_would_be_held_to_its_teachers_entity_f1() {
    let tagger = load_of(TAGGER, "fp32");
    // A teacher 1.5 points above PyTorch's entity F1, which the FP32 export equals.
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(golden_of(TAGGER).join("reference.json")).unwrap()).unwrap();
    let pytorch = reference["test_split"]["entity_f1"].as_f64().unwrap();
    let behind = scratch_golden(TAGGER, "behind", "entity_f1", pytorch + 0.015);
    let outcome = parity::check(&tagger, TAGGER, &behind, &artifacts()).unwrap();
    let _ = std::fs::remove_dir_all(&behind);
    assert!(!teacher_row(&outcome).pass, "{:?}", teacher_row(&outcome));
    // Its own bounds all hold: the teacher row is the one failure.
    assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
    // The teacher's figure as the gate read it (JSON parsing may move its last bit).
    let teacher = outcome.checked.metric.teacher.unwrap();
    assert!((teacher - (pytorch + 0.015)).abs() < 1e-12, "{teacher}");
}
