//! Tokenization of a batch of texts into the padded tensors a transformer takes.
//!
//! Truncation is forced to the model's max length (longest-first, stride 0, as the
//! `transformers` pipeline does with `truncation=True`); padding is done here, to the
//! longest sequence of each batch, so that no batch pays for more than it holds.

use std::borrow::{Borrow, Cow};
use std::path::Path;

use ndarray::Array2;
use ort::session::SessionInputValue;
use ort::value::TensorRef;
use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
use crate::pool::SessionPool;
use crate::registry::{LoadOptions, ModelInfo, Task};
use crate::signature::Signature;
use crate::variants::{self, Resolved};

/// The inputs a text transformer may take, all built by [`TextEncoder::encode`].
const TEXT_INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];

/// What every text model loads from its folder: the chosen variant's sessions, checked
/// against the signature the crate was generated from, and the tokenizer.
pub struct TextModelParts {
    pub variant: Resolved,
    pub pool: SessionPool,
    pub encoder: TextEncoder,
}

impl TextModelParts {
    pub fn open(dir: &Path, signature: &Signature, max_length: usize, options: &LoadOptions) -> Result<Self> {
        if let Some(unknown) = signature.inputs.iter().find(|i| !TEXT_INPUTS.contains(&i.name)) {
            return Err(Error::SignatureMismatch {
                path: dir.to_path_buf(),
                mismatch: format!("input `{}` is not one a text model can be given", unknown.name),
            });
        }
        let (variant, pool) = variants::open_checked(dir, signature, options)?;
        let encoder = TextEncoder::from_file(&dir.join("tokenizer.json"), max_length)?;
        Ok(Self { variant, pool, encoder })
    }

    /// What `GET /models` reports of a text model made of these parts; the task's own
    /// fields (labels, problem type, dimension) are left empty for the caller to fill.
    pub fn info(&self, name: &'static str, task: Task, max_length: usize, signature: Signature) -> ModelInfo {
        ModelInfo {
            name,
            task,
            labels: &[],
            max_length,
            problem_type: None,
            dimension: None,
            pooling: None,
            normalize: None,
            image: None,
            detector: None,
            image_text: None,
            signature,
            head: None,
            variant: self.variant.clone(),
            layout: self.pool.layout(),
            sessions: self.pool.size(),
        }
    }
}

pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_length: usize,
    pad_id: u32,
}

/// Row-major `[batch, longest]` tensors; `lengths[i]` is row i's real token count.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    pub input_ids: Array2<i64>,
    pub attention_mask: Array2<i64>,
    pub token_type_ids: Array2<i64>,
    pub lengths: Vec<usize>,
}

impl EncodedBatch {
    /// The tensors the signature asks for, by name, borrowed for one `session.run`.
    pub fn session_inputs(&self, signature: &Signature) -> Result<Vec<(Cow<'static, str>, SessionInputValue<'_>)>> {
        let mut inputs = Vec::with_capacity(signature.inputs.len());
        for input in signature.inputs {
            let tensor = match input.name {
                "input_ids" => &self.input_ids,
                "attention_mask" => &self.attention_mask,
                _ => &self.token_type_ids,
            };
            inputs.push((Cow::Borrowed(input.name), TensorRef::from_array_view(tensor)?.into()));
        }
        Ok(inputs)
    }
}

impl TextEncoder {
    /// The tokenizer of `path` (a `tokenizer.json`), truncating at `max_length`.
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        let tokenizer = Tokenizer::from_file(path).map_err(|error| Error::Artifact {
            path: path.to_path_buf(),
            message: error.to_string(),
        })?;
        Self::new(tokenizer, max_length)
    }

    /// `tokenizer`, set to truncate at `max_length` and not to pad (batches are padded
    /// to their longest row when they are made).
    pub fn new(mut tokenizer: Tokenizer, max_length: usize) -> Result<Self> {
        let pad_id = tokenizer.get_padding().map_or(0, |padding| padding.pad_id);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                ..TruncationParams::default()
            }))
            .map_err(|error| Error::Tokenizer(error.to_string()))?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer,
            max_length,
            pad_id,
        })
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// One encoding per text, with special tokens, truncated to the max length.
    pub fn encodings(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        texts
            .iter()
            .map(|text| {
                self.tokenizer
                    .encode(*text, true)
                    .map_err(|error| Error::Tokenizer(error.to_string()))
            })
            .collect()
    }

    pub fn token_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        Ok(self
            .encodings(texts)?
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// As [`TextEncoder::encodings`], with offsets in characters of the text (Python's
    /// string indices) instead of UTF-8 bytes: what answers that quote spans need.
    pub fn char_encodings(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        texts
            .iter()
            .map(|text| {
                self.tokenizer
                    .encode_char_offsets(*text, true)
                    .map_err(|error| Error::Tokenizer(error.to_string()))
            })
            .collect()
    }

    /// The tokenizer, with this encoder's truncation and no padding.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn encode(&self, texts: &[&str]) -> Result<EncodedBatch> {
        Ok(self.pad(&self.encodings(texts)?))
    }

    /// Pads encodings (owned or borrowed) to the longest of them, as one batch.
    pub fn pad<E: Borrow<Encoding>>(&self, encodings: &[E]) -> EncodedBatch {
        let longest = encodings.iter().map(|e| e.borrow().len()).max().unwrap_or(0);
        let shape = (encodings.len(), longest);
        let mut input_ids = Array2::from_elem(shape, i64::from(self.pad_id));
        let mut attention_mask = Array2::zeros(shape);
        let mut token_type_ids = Array2::zeros(shape);
        for (row, encoding) in encodings.iter().enumerate() {
            let encoding = encoding.borrow();
            let columns = encoding
                .get_ids()
                .iter()
                .zip(encoding.get_attention_mask())
                .zip(encoding.get_type_ids())
                .enumerate();
            for (column, ((&id, &mask), &type_id)) in columns {
                input_ids[[row, column]] = i64::from(id);
                attention_mask[[row, column]] = i64::from(mask);
                token_type_ids[[row, column]] = i64::from(type_id);
            }
        }
        EncodedBatch {
            input_ids,
            attention_mask,
            token_type_ids,
            lengths: encodings.iter().map(|e| e.borrow().len()).collect(),
        }
    }
}
