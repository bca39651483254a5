//! A distilled student's variants are held to the student's own PyTorch outputs and to the
//! teacher's test metric: the gate `modelcrate-parity` runs and the reload canary repeats.
//! news-topic has a student (`[distill]` in its spec); these tests load its variants from
//! the pipeline's artifacts and check them against a scratch copy of the files the gate
//! reads, with the teacher's figure changed.

mod common;

use std::path::PathBuf;

use modelcrate_runtime::{LoadOptions, VariantChoice};
use modelcrate_server::{models, parity};
use serde_json::Value;

const MODEL: &str = "news-topic";

fn load(variant: &str) -> modelcrate_runtime::LoadedModel {
    let options = LoadOptions::one_session(VariantChoice::Named(variant.into()));
    models::load(models::entry(MODEL).unwrap(), &common::artifacts(), &options)
        .unwrap_or_else(|error| panic!("{MODEL} variant {variant} loads: {error}"))
}

/// A scratch artifacts folder holding what the gate reads of news-topic (its test split
/// and the student's reference), with the teacher's test accuracy set to `teacher`.
fn scratch_artifacts(test: &str, teacher: f64) -> PathBuf {
    let root = std::env::temp_dir().join(format!("modelcrate-student-{test}-{}", std::process::id()));
    let model = root.join(MODEL);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(model.join("student")).unwrap();
    std::fs::create_dir_all(model.join("data")).unwrap();
    let real = common::artifacts().join(MODEL);
    std::fs::copy(real.join("data/test.jsonl"), model.join("data/test.jsonl")).unwrap();
    let text = std::fs::read_to_string(real.join("student/reference.json"))
        .expect("artifacts/news-topic/student/reference.json (cargo xtask golden)");
    let mut reference: Value = serde_json::from_str(&text).unwrap();
    reference["teacher"]["test_split"]["accuracy"] = teacher.into();
    std::fs::write(model.join("student/reference.json"), reference.to_string()).unwrap();
    root
}

fn golden() -> PathBuf {
    common::workspace().join("golden").join(MODEL)
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
    let artifacts = scratch_artifacts("behind", accuracy + 0.015);
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
    let artifacts_at_bound = scratch_artifacts("at-bound", accuracy + 0.01);
    let outcome = parity::check(&student, MODEL, &golden(), &artifacts_at_bound).unwrap();
    assert!(outcome.passed(), "{:?}", outcome.failures);
    for dir in [artifacts, artifacts_at_bound] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
