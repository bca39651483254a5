//! Which ONNX file of a model's folder to load. The optimize step lists the variants it
//! made in `variants.json`, a distilled student's optimize step its own in
//! `variants.student.json`; `cargo xtask select` writes the one that serves, chosen by
//! measurement among those that passed their parity gate, to `serving.json`. Every variant
//! shares the FP32 signature, so any of them loads through the same generated crate.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The manifest of variants, as `python/modelcrate/optimize.py` writes it.
pub const VARIANTS_FILE: &str = "variants.json";
/// A distilled student's variants, as `python/modelcrate/student.py` writes them (the
/// same schema), made after the teacher's and read as part of the same list.
pub const STUDENT_VARIANTS_FILE: &str = "variants.student.json";
/// The serving choice, as `cargo xtask select` writes it.
pub const SERVING_FILE: &str = "serving.json";
/// The FP32 export, which exists before any variant is made.
pub const FP32: &str = "fp32";
const FP32_FILE: &str = "model.onnx";

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

/// How far a variant's outputs may drift from PyTorch's, by how it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariantKind {
    /// The FP32 export or a graph-optimized copy of it: FP32 parity bounds.
    Fp32,
    /// Quantized to INT8 (dynamically, or statically with calibration): the INT8 gate
    /// (task metric within 1.0 point).
    Int8,
}

impl VariantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Int8 => "int8",
        }
    }
}

/// One entry of `variants.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variant {
    pub name: String,
    pub kind: VariantKind,
    pub made: bool,
    /// How it was made (optimum level, quantizer config, …).
    #[serde(default)]
    pub how: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    /// Why it could not be made.
    #[serde(default)]
    pub why: Option<String>,
    #[serde(default)]
    pub size_bytes: Option<u64>,
    #[serde(default)]
    pub nodes: Option<u64>,
    /// Fused operators by type, such as `Attention` or `SkipLayerNormalization`.
    #[serde(default)]
    pub fused: std::collections::BTreeMap<String, u64>,
    /// A distilled student's variant: which of the teacher's layers it kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<Student>,
}

/// What a distilled student kept of its teacher. A student's variants are held to the
/// student's own PyTorch outputs (`<artifacts>/<name>/student/reference.json`) and to the
/// teacher's test metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Student {
    /// The teacher's encoder layers the student kept, in order.
    pub kept_layers: Vec<usize>,
    pub teacher_layers: usize,
}

/// `variants.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variants {
    pub model: String,
    #[serde(default)]
    pub int8_config: Option<String>,
    pub variants: Vec<Variant>,
}

impl Variants {
    /// Reads `dir/variants.json` with the student's variants after the teacher's, when
    /// `variants.student.json` is there too; `None` when the optimize step has not run.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let Some(mut variants) = read_json::<Self>(&dir.join(VARIANTS_FILE))? else {
            return Ok(None);
        };
        if let Some(student) = read_json::<Self>(&dir.join(STUDENT_VARIANTS_FILE))? {
            variants.variants.extend(student.variants);
        }
        Ok(Some(variants))
    }

    /// The variants that were made.
    pub fn made(&self) -> impl Iterator<Item = &Variant> {
        self.variants.iter().filter(|v| v.made && v.file.is_some())
    }
}

/// `serving.json`: the variant that serves and why it was chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Serving {
    pub model: String,
    /// The spec's policy: `fastest`, `most_accurate` or `named`.
    pub policy: String,
    pub variant: String,
    pub file: String,
    pub kind: VariantKind,
    /// One sentence on why this variant, with the figures that decided it.
    pub reason: String,
    /// How the engine runs this variant, chosen from its measured costs; absent in a
    /// file written before costs were measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<crate::policy::EnginePolicy>,
    /// Every made variant as `cargo xtask select` saw it when it chose; empty in a file
    /// written before they were listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Candidate>,
}

/// A made variant as `select` saw it: its size of work, its test metric against the
/// teacher, its speed and memory here, and why it does or does not serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub name: String,
    pub kind: VariantKind,
    /// Encoder layers (a distilled student's kept ones).
    #[serde(default)]
    pub layers: Option<u64>,
    /// Billions of operations one sequence of so many tokens costs (keys are token counts).
    #[serde(default)]
    pub gop_per_sequence: Option<std::collections::BTreeMap<String, f64>>,
    pub test_metric: TestMetric,
    /// At batch 32, one thread; `None` for a variant that failed its gate (never measured).
    #[serde(default)]
    pub sequences_per_second: Option<f64>,
    /// One text per request.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    pub passed: bool,
    /// `serves`, or why not.
    pub verdict: String,
}

/// A variant's task metric on the test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestMetric {
    pub name: String,
    pub value: f64,
    /// Percentage points against the teacher's FP32 export.
    #[serde(default)]
    pub points_vs_teacher: Option<f64>,
}

impl Serving {
    /// Reads `dir/serving.json`; `None` when no variant has been selected yet.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        read_json(&dir.join(SERVING_FILE))
    }
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
        VariantChoice::Serving => match Serving::read(dir)? {
            Some(serving) => {
                // Whether it is a student's is said by the manifest, not by serving.json.
                let listed = Variants::read(dir)?.and_then(|variants| {
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
    let Some(variants) = Variants::read(dir)? else {
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

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(Error::Artifact {
                path: path.clone(),
                message: error.to_string(),
            });
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|error| Error::Artifact {
        path: path.clone(),
        message: format!("malformed: {error}"),
    })
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
        let names: Vec<String> = Variants::read(dir.path())
            .unwrap()
            .unwrap()
            .made()
            .map(|v| v.name.clone())
            .collect();
        assert_eq!(names, ["fp32", "int8", "student-int8"]);
        std::fs::write(dir.path().join("variants.student.json"), "[").unwrap();
        let error = Variants::read(dir.path()).unwrap_err().to_string();
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
