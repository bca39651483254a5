//! `variants.json`: the variants an optimize step made of a model, and
//! `variants.student.json`, a distilled student's, in the same shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::task::VariantKind;

/// The manifest of variants, as `python/modelcrate/optimize.py` writes it.
pub const VARIANTS_FILE: &str = "variants.json";
/// A distilled student's variants, as `python/modelcrate/student.py` writes them (the
/// same schema), made after the teacher's and read as part of the same list.
pub const STUDENT_VARIANTS_FILE: &str = "variants.student.json";
/// The serving choice, as `cargo xtask select` writes it.
pub const SERVING_FILE: &str = "serving.json";
/// The FP32 export's variant name, which exists before any variant is made.
pub const FP32: &str = "fp32";
/// The FP32 export's file.
pub const FP32_FILE: &str = "model.onnx";

/// `variants.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Variants {
    pub model: String,
    #[serde(default)]
    pub int8_config: Option<String>,
    pub variants: Vec<Variant>,
}

impl Variants {
    /// The variants that were made.
    pub fn made(&self) -> impl Iterator<Item = &Variant> {
        self.variants.iter().filter(|v| v.made && v.file.is_some())
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
    pub fused: BTreeMap<String, u64>,
    /// A distilled student's variant: which of the teacher's layers it kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<Student>,
}

impl Variant {
    /// The FP32 export as a variant: what a model has before its optimize step ran.
    pub fn fp32_export() -> Self {
        Self {
            name: FP32.into(),
            kind: VariantKind::Fp32,
            made: true,
            how: None,
            file: Some(FP32_FILE.into()),
            why: None,
            size_bytes: None,
            nodes: None,
            fused: BTreeMap::new(),
            student: None,
        }
    }
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
