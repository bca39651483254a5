//! The ONNX signature a generated crate was rendered from, and the check that an
//! artifact still has it: a crate's types must never drift silently from its model.

use std::fmt::Write as _;
use std::path::Path;

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use crate::error::{Error, Result};

/// Element types that appear in the signatures Modelcrate generates crates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    Float32,
    Int64,
    Int32,
}

impl DType {
    fn of(element: TensorElementType) -> Option<Self> {
        match element {
            TensorElementType::Float32 => Some(Self::Float32),
            TensorElementType::Int64 => Some(Self::Int64),
            TensorElementType::Int32 => Some(Self::Int32),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Float32 => "float32",
            Self::Int64 => "int64",
            Self::Int32 => "int32",
        }
    }
}

/// One input or output: its name, element type, and dimensions (`None` where dynamic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: &'static str,
    pub dtype: DType,
    pub dims: &'static [Option<i64>],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub inputs: &'static [TensorSpec],
    pub outputs: &'static [TensorSpec],
}

impl Signature {
    /// Compares a loaded session with this signature; lists every difference.
    pub fn check(&self, session: &Session, path: &Path) -> Result<()> {
        let mut problems = String::new();
        compare(
            "input",
            self.inputs,
            session.inputs().iter().map(|o| (o.name(), o.dtype())),
            &mut problems,
        );
        compare(
            "output",
            self.outputs,
            session.outputs().iter().map(|o| (o.name(), o.dtype())),
            &mut problems,
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::SignatureMismatch {
                path: path.to_path_buf(),
                mismatch: problems.trim_end_matches("; ").to_string(),
            })
        }
    }

    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|input| input.name == name)
    }
}

fn compare<'a>(
    kind: &str,
    expected: &[TensorSpec],
    actual: impl Iterator<Item = (&'a str, &'a ValueType)>,
    problems: &mut String,
) {
    let actual: Vec<_> = actual.collect();
    let expected_names: Vec<_> = expected.iter().map(|spec| spec.name).collect();
    let actual_names: Vec<_> = actual.iter().map(|(name, _)| *name).collect();
    if expected_names != actual_names {
        let _ = write!(problems, "{kind}s are {actual_names:?}, expected {expected_names:?}; ");
        return;
    }
    for (spec, (name, value_type)) in expected.iter().zip(&actual) {
        let (Some(element), Some(shape)) = (value_type.tensor_type(), value_type.tensor_shape()) else {
            let _ = write!(problems, "{kind} `{name}` is not a tensor; ");
            continue;
        };
        let dtype = DType::of(element);
        if dtype != Some(spec.dtype) {
            let found = dtype.map_or_else(|| element.to_string(), |d| d.as_str().to_string());
            let _ = write!(
                problems,
                "{kind} `{name}` is {found}, expected {}; ",
                spec.dtype.as_str()
            );
        }
        let dims: Vec<Option<i64>> = shape.iter().map(|&d| (d >= 0).then_some(d)).collect();
        if dims.as_slice() != spec.dims {
            let _ = write!(
                problems,
                "{kind} `{name}` has dimensions {}, expected {}; ",
                show(&dims),
                show(spec.dims)
            );
        }
    }
}

fn show(dims: &[Option<i64>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or_else(|| "?".to_string(), |d| d.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}
