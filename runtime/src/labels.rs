//! How a generated crate's `Label` enum meets the runtime: the runtime answers with label
//! ids (the logits' columns, `config.json`'s `id2label` keys), and each generated enum says
//! which of its variants an id is. No crate parses the runtime's label strings back.

use crate::error::{Error, Result};

/// A model's labels as a generated crate declares them, in `config.json` id order.
pub trait Labels: Copy + Send + Sync + 'static {
    /// Label strings in id order, as `id2label` has them.
    const NAMES: &'static [&'static str];

    /// The label whose id is `id`, if the model has one.
    fn from_id(id: usize) -> Option<Self>;

    /// The id in `config.json`, which is also the logit's column.
    fn id(self) -> usize;
}

/// The label `id` of `L`, or an error naming the id: an output wider than the crate's
/// labels means the artifact is not the one the crate was generated from.
pub fn label<L: Labels>(id: usize) -> Result<L> {
    L::from_id(id).ok_or_else(|| Error::OutputShape(format!("label id {id} of a model with {} labels", L::NAMES.len())))
}

/// A label string that is not one of the model's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown label `{label}`; the labels are {known:?}")]
pub struct UnknownLabel {
    pub label: String,
    pub known: Vec<&'static str>,
}

/// The id of `text` among `names`: what a generated enum's `FromStr` (a user's or a
/// reference file's label, never the runtime's answer) is made of.
pub fn parse_label(text: &str, names: &[&'static str]) -> std::result::Result<usize, UnknownLabel> {
    names.iter().position(|name| *name == text).ok_or_else(|| UnknownLabel {
        label: text.to_string(),
        known: names.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Pets {
        Cat,
        Dog,
    }

    impl Labels for Pets {
        const NAMES: &'static [&'static str] = &["cat", "dog"];

        fn from_id(id: usize) -> Option<Self> {
            [Self::Cat, Self::Dog].get(id).copied()
        }

        fn id(self) -> usize {
            self as usize
        }
    }

    #[test]
    fn ids_become_labels_and_a_foreign_id_is_an_error() {
        assert_eq!(label::<Pets>(1).ok(), Some(Pets::Dog));
        let error = label::<Pets>(2).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("label id 2 of a model with 2 labels"), "{error}");
    }

    #[test]
    fn strings_parse_to_ids_or_name_the_known_labels() {
        assert_eq!(parse_label("dog", Pets::NAMES), Ok(1));
        let unknown = parse_label("cow", Pets::NAMES)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(unknown.contains("`cow`") && unknown.contains("\"cat\""), "{unknown}");
    }
}
