//! Which ONNX file of a model's folder to load. The optimize step lists the variants it
//! made in `variants.json`, a distilled student's optimize step its own in
//! `variants.student.json`; `cargo xtask select` writes the one that serves, chosen by
//! measurement among those that passed their parity gate, to `serving.json`. Every variant
//! shares the FP32 signature, so any of them loads through the same generated crate.

use std::path::Path;

use serde::Serialize;

pub use modelcrate_schema::{
    Candidate, FP32, FP32_FILE, SERVING_FILE, STUDENT_VARIANTS_FILE, Serving, Student, TestMetric, VARIANTS_FILE,
    Variant, VariantKind, Variants,
};

use crate::error::{Error, Result};
use crate::json_file::read_optional;

/// Which variant to load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum VariantChoice {
    /// The one `serving.json` names; FP32 when the folder has no `serving.json`.
    #[default]
    Serving,
    /// A variant by its name in `variants.json` (`fp32`, `O2`, `int8`, …) or its file name.
    Named(String),
}

impl VariantChoice {
    /// `serving` (or an empty string) picks the serving variant; anything else is a name.
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "" | "serving" => Self::Serving,
            name => Self::Named(name.to_string()),
        }
    }
}

/// Reads `dir/variants.json` with the student's variants after the teacher's, when
/// `variants.student.json` is there too; `None` when the optimize step has not run.
pub fn read_variants(dir: &Path) -> Result<Option<Variants>> {
    let Some(mut variants) = read_optional::<Variants>(&dir.join(VARIANTS_FILE))? else {
        return Ok(None);
    };
    if let Some(student) = read_optional::<Variants>(&dir.join(STUDENT_VARIANTS_FILE))? {
        variants.variants.extend(student.variants);
    }
    Ok(Some(variants))
}

/// Reads `dir/serving.json`; `None` when no variant has been selected yet.
pub fn read_serving(dir: &Path) -> Result<Option<Serving>> {
    read_optional(&dir.join(SERVING_FILE))
}

/// A variant resolved to a file of the model's folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub name: String,
    pub file: String,
    pub kind: VariantKind,
    /// Why this one: named by the caller, selected (with the reason), or the FP32 fallback.
    pub selection: String,
    /// Set when it is a variant of a distilled student.
    pub student: Option<Student>,
    /// When selected: every variant `select` weighed, and why each does or does not serve.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
}

/// Opens the variant `options` choose from `dir` as a session pool, checked against the
/// signature the model's crate was generated from.
pub fn open_checked(
    dir: &Path,
    signature: &crate::signature::Signature,
    options: &crate::registry::LoadOptions,
) -> Result<(Resolved, crate::pool::SessionPool)> {
    let variant = resolve(dir, &options.variant)?;
    let model = dir.join(&variant.file);
    let pool = crate::pool::SessionPool::open(&model, options)?;
    pool.inspect(|session| signature.check(session, &model))?;
    Ok((variant, pool))
}

/// Resolves `choice` against the folder's `variants.json` and `serving.json`.
pub fn resolve(dir: &Path, choice: &VariantChoice) -> Result<Resolved> {
    match choice {
        VariantChoice::Serving => match read_serving(dir)? {
            Some(serving) => {
                // Whether it is a student's is said by the manifest, not by serving.json.
                let listed = read_variants(dir)?.and_then(|variants| {
                    variants
                        .variants
                        .into_iter()
                        .find(|variant| variant.name == serving.variant)
                });
                Ok(Resolved {
                    student: listed.and_then(|variant| variant.student),
                    name: serving.variant,
                    file: serving.file,
                    kind: serving.kind,
                    selection: format!("selected ({}): {}", serving.policy, serving.reason),
                    candidates: serving.candidates,
                })
            }
            None => Ok(Resolved {
                name: FP32.into(),
                file: FP32_FILE.into(),
                kind: VariantKind::Fp32,
                selection: format!(
                    "fp32: {} has no {SERVING_FILE} (run `cargo xtask select`)",
                    dir.display()
                ),
                student: None,
                candidates: Vec::new(),
            }),
        },
        VariantChoice::Named(name) => named(dir, name),
    }
}

fn named(dir: &Path, name: &str) -> Result<Resolved> {
    let path = dir.join(VARIANTS_FILE);
    let Some(variants) = read_variants(dir)? else {
        if name == FP32 || name == FP32_FILE {
            return Ok(Resolved {
                name: FP32.into(),
                file: FP32_FILE.into(),
                kind: VariantKind::Fp32,
                selection: "named".into(),
                student: None,
                candidates: Vec::new(),
            });
        }
        return Err(Error::Variant(format!(
            "no {}: run `cargo xtask optimize` to make variant `{name}`",
            path.display()
        )));
    };
    let Some(variant) = variants
        .variants
        .iter()
        .find(|v| v.name == name || v.file.as_deref() == Some(name))
    else {
        let known: Vec<&str> = variants.made().map(|v| v.name.as_str()).collect();
        return Err(Error::Variant(format!(
            "{} (with {STUDENT_VARIANTS_FILE} beside it, if any) lists no variant `{name}`; made variants are {known:?}",
            path.display()
        )));
    };
    match (&variant.file, variant.made) {
        (Some(file), true) => Ok(Resolved {
            name: variant.name.clone(),
            file: file.clone(),
            kind: variant.kind,
            selection: "named".into(),
            student: variant.student.clone(),
            candidates: Vec::new(),
        }),
        _ => Err(Error::Variant(format!(
            "variant `{}` of {} was not made: {}",
            variant.name,
            dir.display(),
            variant.why.as_deref().unwrap_or("no reason recorded")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder holding `files`, removed when the test ends.
    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    const VARIANTS: &str = r#"{"model": "m", "variants": [
        {"name": "fp32", "kind": "fp32", "made": true, "file": "model.onnx", "nodes": 529},
        {"name": "int8", "kind": "int8", "made": true, "file": "model.int8.onnx"},
        {"name": "O3", "kind": "fp32", "made": false, "why": "FastGelu is not supported"}]}"#;

    const STUDENT_VARIANTS: &str = r#"{"model": "m", "variants": [
        {"name": "student-int8", "kind": "int8", "made": true, "file": "model.student.int8.onnx",
         "student": {"kept_layers": [0, 2, 4], "teacher_layers": 6}}]}"#;

    #[test]
    fn a_students_variants_are_listed_after_the_teachers_once_made() {
        let dir = folder(&[("variants.json", VARIANTS)]);
        assert!(
            named(dir.path(), "student-int8")
                .unwrap_err()
                .to_string()
                .contains("no variant")
        );
        std::fs::write(dir.path().join("variants.student.json"), STUDENT_VARIANTS).unwrap();
        let names: Vec<String> = read_variants(dir.path())
            .unwrap()
            .unwrap()
            .made()
            .map(|v| v.name.clone())
            .collect();
        assert_eq!(names, ["fp32", "int8", "student-int8"]);
        std::fs::write(dir.path().join("variants.student.json"), "[").unwrap();
        let error = read_variants(dir.path()).unwrap_err().to_string();
        assert!(error.contains("variants.student.json"), "{error}");
    }

    #[test]
    fn a_students_variant_says_what_it_kept_named_or_serving() {
        let dir = folder(&[("variants.json", VARIANTS), ("variants.student.json", STUDENT_VARIANTS)]);
        let kept = Some(Student {
            kept_layers: vec![0, 2, 4],
            teacher_layers: 6,
        });
        assert_eq!(named(dir.path(), "student-int8").unwrap().student, kept);
        assert_eq!(named(dir.path(), "int8").unwrap().student, None);
        let serving = r#"{"model": "m", "policy": "fastest", "variant": "student-int8",
            "file": "model.student.int8.onnx", "kind": "int8", "reason": "fastest"}"#;
        std::fs::write(dir.path().join("serving.json"), serving).unwrap();
        assert_eq!(resolve(dir.path(), &VariantChoice::Serving).unwrap().student, kept);
    }

    #[test]
    fn serving_falls_back_to_fp32_without_a_serving_file() {
        let dir = folder(&[("variants.json", VARIANTS)]);
        let resolved = resolve(dir.path(), &VariantChoice::Serving).unwrap();
        assert_eq!((resolved.name.as_str(), resolved.file.as_str()), ("fp32", "model.onnx"));
        assert!(resolved.selection.contains("no serving.json"), "{}", resolved.selection);
    }

    #[test]
    fn serving_loads_what_serving_json_names() {
        let serving = r#"{"model": "m", "policy": "fastest", "variant": "int8", "file": "model.int8.onnx",
            "kind": "int8", "reason": "2.1x fp32's throughput"}"#;
        let dir = folder(&[("variants.json", VARIANTS), ("serving.json", serving)]);
        let resolved = resolve(dir.path(), &VariantChoice::Serving).unwrap();
        assert_eq!(resolved.file, "model.int8.onnx");
        assert_eq!(resolved.kind, VariantKind::Int8);
        assert_eq!(resolved.selection, "selected (fastest): 2.1x fp32's throughput");
        assert!(resolved.candidates.is_empty());
    }

    #[test]
    fn the_variants_select_weighed_come_with_the_serving_one() {
        // As `cargo xtask select` writes it: a failed variant has no speed.
        let serving = r#"{"model": "m", "policy": "fastest", "variant": "int8", "file": "model.int8.onnx",
            "kind": "int8", "reason": "fastest", "candidates": [
            {"name": "fp32", "kind": "fp32", "layers": 6, "gop_per_sequence": {"32": 0.7, "128": 2.87},
             "test_metric": {"name": "accuracy", "value": 0.97, "points_vs_teacher": 0.0},
             "sequences_per_second": 27.0, "p50_ms": 20.1, "peak_rss_bytes": 300000000,
             "passed": true, "verdict": "slower: 0.41× the serving variant's 65.8 sequences/s"},
            {"name": "O3", "kind": "fp32", "layers": 6, "gop_per_sequence": null,
             "test_metric": {"name": "accuracy", "value": 0.97, "points_vs_teacher": 0.0},
             "sequences_per_second": null, "p50_ms": null, "peak_rss_bytes": null,
             "passed": false, "verdict": "fails its fp32 gate: drift 2e-3"},
            {"name": "int8", "kind": "int8", "layers": 6, "gop_per_sequence": {"32": 0.7, "128": 2.87},
             "test_metric": {"name": "accuracy", "value": 0.9663, "points_vs_teacher": -0.37},
             "sequences_per_second": 65.8, "p50_ms": 13.8, "peak_rss_bytes": 261000000,
             "passed": true, "verdict": "serves"}]}"#;
        let dir = folder(&[("variants.json", VARIANTS), ("serving.json", serving)]);
        let resolved = resolve(dir.path(), &VariantChoice::Serving).unwrap();
        let verdicts: Vec<&str> = resolved.candidates.iter().map(|c| c.verdict.as_str()).collect();
        assert_eq!(verdicts.len(), 3);
        assert_eq!(verdicts[2], "serves");
        assert_eq!(resolved.candidates[1].sequences_per_second, None);
        assert_eq!(resolved.candidates[2].test_metric.points_vs_teacher, Some(-0.37));
        // `/models` shows them as `variant.candidates`.
        let shown = serde_json::to_value(&resolved).unwrap();
        assert_eq!(shown["candidates"][0]["gop_per_sequence"]["128"], 2.87);
        // A named variant was not weighed against the others: none are listed.
        assert!(named(dir.path(), "int8").unwrap().candidates.is_empty());
    }

    #[test]
    fn a_variant_is_found_by_name_or_file() {
        let dir = folder(&[("variants.json", VARIANTS)]);
        assert_eq!(named(dir.path(), "int8").unwrap().file, "model.int8.onnx");
        assert_eq!(named(dir.path(), "model.int8.onnx").unwrap().name, "int8");
    }

    #[test]
    fn an_unmade_or_unknown_variant_is_refused_with_the_reason() {
        let dir = folder(&[("variants.json", VARIANTS)]);
        let unmade = named(dir.path(), "O3").unwrap_err().to_string();
        assert!(unmade.contains("FastGelu is not supported"), "{unmade}");
        let unknown = named(dir.path(), "O9").unwrap_err().to_string();
        assert!(
            unknown.contains("no variant `O9`") && unknown.contains("\"int8\""),
            "{unknown}"
        );
    }

    #[test]
    fn a_malformed_serving_file_names_the_file() {
        let dir = folder(&[("serving.json", "{\"model\": 1}")]);
        let error = resolve(dir.path(), &VariantChoice::Serving).unwrap_err().to_string();
        assert!(error.contains("serving.json") && error.contains("malformed"), "{error}");
    }

    #[test]
    fn the_word_serving_and_an_empty_string_pick_the_serving_variant() {
        assert_eq!(VariantChoice::parse("serving"), VariantChoice::Serving);
        assert_eq!(VariantChoice::parse(""), VariantChoice::Serving);
        assert_eq!(VariantChoice::parse("O2"), VariantChoice::Named("O2".into()));
    }
}
