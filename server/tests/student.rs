//! A distilled student's variants are held to the student's own PyTorch outputs and to the
//! teacher's test metric: the gate `modelcrate-parity` runs and the reload canary repeats.
//! news-topic (a classifier) and news-embed (a sentence-embedding model) have students
//! (`[distill]` in their specs); these tests load their variants from the pipeline's
//! artifacts and check them against a scratch copy of the files the gate reads, with the
//! teacher's figure changed.

mod common;

use std::path::PathBuf;

use modelcrate_runtime::{LoadOptions, VariantChoice};
use modelcrate_server::{models, parity};
use serde_json::Value;

const MODEL: &str = "news-topic";
const EMBEDDER: &str = "news-embed";

fn load_of(model: &str, variant: &str) -> modelcrate_runtime::LoadedModel {
    let options = LoadOptions::one_session(VariantChoice::Named(variant.into()));
    models::load(models::entry(model).unwrap(), &common::artifacts(), &options)
        .unwrap_or_else(|error| panic!("{model} variant {variant} loads: {error}"))
}

fn load(variant: &str) -> modelcrate_runtime::LoadedModel {
    load_of(MODEL, variant)
}

/// A scratch artifacts folder holding what the gate reads of `model` (its test split
/// and the student's reference), with the teacher's test metric (`metric` in the
/// reference's `teacher.test_split`) set to `teacher`.
fn scratch_artifacts(model: &str, test: &str, metric: &str, teacher: f64) -> PathBuf {
    let root = std::env::temp_dir().join(format!("modelcrate-student-{model}-{test}-{}", std::process::id()));
    let scratch = root.join(model);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(scratch.join("student")).unwrap();
    std::fs::create_dir_all(scratch.join("data")).unwrap();
    let real = common::artifacts().join(model);
    for split in ["test.jsonl", "test_pairs.jsonl"] {
        if real.join("data").join(split).is_file() {
            std::fs::copy(real.join("data").join(split), scratch.join("data").join(split)).unwrap();
        }
    }
    let text = std::fs::read_to_string(real.join("student/reference.json"))
        .unwrap_or_else(|_| panic!("artifacts/{model}/student/reference.json (cargo xtask distill)"));
    let mut reference: Value = serde_json::from_str(&text).unwrap();
    reference["teacher"]["test_split"][metric] = teacher.into();
    std::fs::write(scratch.join("student/reference.json"), reference.to_string()).unwrap();
    root
}

fn golden_of(model: &str) -> PathBuf {
    common::workspace().join("golden").join(model)
}

fn golden() -> PathBuf {
    golden_of(MODEL)
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
    let artifacts = common::artifacts();
    assert_eq!(
        parity::reference_path(&student, MODEL, &golden(), &artifacts),
        artifacts.join(MODEL).join("student/reference.json")
    );
    let outcome = parity::check(&student, MODEL, &golden(), &artifacts).unwrap();
    assert!(outcome.passed(), "{:?}", outcome.failures);
    assert!(teacher_row(&outcome).pass);
    // The teacher's own variants keep the golden reference, and have no teacher row.
    let teacher = load("int8");
    assert_eq!(
        parity::reference_path(&teacher, MODEL, &golden(), &artifacts),
        golden().join("reference.json")
    );
    let outcome = parity::check(&teacher, MODEL, &golden(), &artifacts).unwrap();
    assert!(!outcome.rows.iter().any(|row| row.check.contains("teacher")));
}

#[test]
fn a_student_more_than_a_point_below_its_teacher_misses_its_gate() {
    let student = load("student-int8");
    let real = parity::check(&student, MODEL, &golden(), &common::artifacts()).unwrap();
    let accuracy = real.checked.metric["value"].as_f64().unwrap();
    // A teacher 1.5 points above the student: the student's own bounds still hold, the
    // teacher row does not.
    let artifacts = scratch_artifacts(MODEL, "behind", "accuracy", accuracy + 0.015);
    let outcome = parity::check(&student, MODEL, &golden(), &artifacts).unwrap();
    let row = teacher_row(&outcome);
    assert!(!row.pass, "{row:?}");
    assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
    assert!(
        outcome.failures[0].contains("vs the teacher's FP32"),
        "{:?}",
        outcome.failures
    );
    // Exactly a point above: within the bound.
    let artifacts_at_bound = scratch_artifacts(MODEL, "at-bound", "accuracy", accuracy + 0.01);
    let outcome = parity::check(&student, MODEL, &golden(), &artifacts_at_bound).unwrap();
    assert!(outcome.passed(), "{:?}", outcome.failures);
    for dir in [artifacts, artifacts_at_bound] {
        let _ = std::fs::remove_dir_all(dir);
    }
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
    let real = parity::check(&student, EMBEDDER, &golden, &common::artifacts()).unwrap();
    assert!(real.passed(), "{:?}", real.failures);
    assert!(teacher_row(&real).pass);
    let recall = real.checked.metric["value"].as_f64().unwrap();
    let behind = scratch_artifacts(EMBEDDER, "behind", "recall_at_10", recall + 0.015);
    let outcome = parity::check(&student, EMBEDDER, &golden, &behind).unwrap();
    assert!(!teacher_row(&outcome).pass, "{:?}", teacher_row(&outcome));
    assert_eq!(outcome.failures.len(), 1, "{:?}", outcome.failures);
    let at_bound = scratch_artifacts(EMBEDDER, "at-bound", "recall_at_10", recall + 0.01);
    let outcome = parity::check(&student, EMBEDDER, &golden, &at_bound).unwrap();
    assert!(outcome.passed(), "{:?}", outcome.failures);
    for dir in [behind, at_bound] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
