//! Sentence embeddings as `SentenceTransformer.encode` computes them: the transformer's
//! `last_hidden_state`, pooled over the real tokens of each text (the attention mask),
//! then L2-normalised when the model has a `Normalize` module. The pooling a model uses is
//! part of what its crate was generated from, and is checked against the artifact's
//! `pooling.json` at load. Plus the helpers a search over embeddings needs.

use std::path::Path;

pub use modelcrate_schema::Pooling;
use modelcrate_schema::PoolingFile;
use ndarray::{ArrayView3, Ix3};
use ort::session::Session;

use crate::error::{Error, Result};
use crate::pool::{Lane, SessionPool};
use crate::registry::{Input, LoadOptions, ModelInfo, RowOutput, Task, TaskModel, texts_of};
use crate::signature::Signature;
use crate::text::{EncodedBatch, TextEncoder, TextModelParts};

/// What a generated crate knows of its embedding model, as constants.
#[derive(Debug, Clone, Copy)]
pub struct SentenceEmbedderSpec {
    pub name: &'static str,
    pub signature: Signature,
    /// The output holding `[batch, tokens, hidden]` token vectors.
    pub hidden_output: &'static str,
    pub dimension: usize,
    pub pooling: Pooling,
    pub normalize: bool,
    pub max_length: usize,
}

impl SentenceEmbedderSpec {
    /// How this model's token vectors become its embedding.
    pub fn pooler(&self) -> Pooler {
        Pooler {
            hidden_output: self.hidden_output,
            dimension: self.dimension,
            pooling: self.pooling,
            normalize: self.normalize,
        }
    }
}

/// How a transformer's token vectors become one sentence vector, as sentence-transformers'
/// `Pooling` (and `Normalize`, when the model has it) modules compute it. Shared by
/// embedding models and the bodies of SetFit classifiers.
#[derive(Debug, Clone, Copy)]
pub struct Pooler {
    /// The output holding `[batch, tokens, hidden]` token vectors.
    pub hidden_output: &'static str,
    pub dimension: usize,
    pub pooling: Pooling,
    /// Whether the model L2-normalises the pooled vector (it has a `Normalize` module).
    pub normalize: bool,
}

impl Pooler {
    /// Runs `batch` on `session` and pools each row's token vectors; the vectors are not
    /// yet normalised.
    pub fn pooled(&self, session: &mut Session, batch: &EncodedBatch, signature: &Signature) -> Result<Vec<Vec<f32>>> {
        let outputs = session.run(batch.session_inputs(signature)?)?;
        let output = outputs
            .get(self.hidden_output)
            .ok_or_else(|| Error::OutputShape(format!("no output named `{}`", self.hidden_output)))?;
        let hidden = output
            .try_extract_array::<f32>()?
            .into_dimensionality::<Ix3>()
            .map_err(|error| Error::OutputShape(error.to_string()))?;
        let (rows, columns, width) = hidden.dim();
        if rows != batch.lengths.len() || columns != batch.input_ids.ncols() || width != self.dimension {
            return Err(Error::OutputShape(format!(
                "{:?}, expected ({}, {}, {})",
                hidden.dim(),
                batch.lengths.len(),
                batch.input_ids.ncols(),
                self.dimension
            )));
        }
        Ok(pool_tokens(hidden, batch, self.pooling))
    }

    /// The artifact's `pooling.json` must describe this pooling.
    pub fn check(&self, path: &Path) -> Result<()> {
        let found: PoolingFile = crate::json_file::read(path)?;
        if found.mode == self.pooling && found.normalize == self.normalize && found.dimension == self.dimension {
            Ok(())
        } else {
            Err(Error::SignatureMismatch {
                path: path.to_path_buf(),
                mismatch: format!(
                    "pooling {} normalize {} dimension {}, expected pooling {} normalize {} dimension {}",
                    found.mode.as_str(),
                    found.normalize,
                    found.dimension,
                    self.pooling.as_str(),
                    self.normalize,
                    self.dimension
                ),
            })
        }
    }
}

/// A loaded sentence-embedding model: tokenizer, session pool and its pooling.
pub struct SentenceEmbedder {
    info: ModelInfo,
    spec: SentenceEmbedderSpec,
    encoder: TextEncoder,
    pool: SessionPool,
    max_batch_size: usize,
}

impl SentenceEmbedder {
    /// Loads the chosen variant of `dir`, refusing an artifact whose signature or pooling
    /// differs from `spec`.
    pub fn load(dir: &Path, spec: SentenceEmbedderSpec, options: &LoadOptions) -> Result<Self> {
        spec.pooler().check(&dir.join("pooling.json"))?;
        let parts = TextModelParts::open(dir, &spec.signature, spec.max_length, options)?;
        let info = ModelInfo {
            dimension: Some(spec.dimension),
            pooling: Some(spec.pooling),
            normalize: Some(spec.normalize),
            ..parts.info(spec.name, Task::FeatureExtraction, spec.max_length, spec.signature)
        };
        let TextModelParts { pool, encoder, .. } = parts;
        Ok(Self {
            info,
            spec,
            encoder,
            pool,
            max_batch_size: options.max_batch_size.max(1),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn encoder(&self) -> &TextEncoder {
        &self.encoder
    }

    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// Whether the model L2-normalises its embeddings (it has a `Normalize` module).
    pub fn normalizes(&self) -> bool {
        self.spec.normalize
    }

    /// How token vectors become the embedding.
    pub fn pooling(&self) -> Pooling {
        self.spec.pooling
    }

    /// One embedding per text, normalised as the model is (see [`SentenceEmbedderSpec`]).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with(texts, self.spec.normalize)
    }

    /// One embedding per text; `normalize` overrides the model's own choice.
    pub fn embed_with(&self, texts: &[&str], normalize: bool) -> Result<Vec<Vec<f32>>> {
        let mut all = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.max_batch_size) {
            let pooled = self.pooled_of(&self.encoder.encode(chunk)?, Lane::Any)?;
            all.extend(pooled.into_iter().map(|mut vector| {
                if normalize {
                    l2_normalize(&mut vector);
                }
                vector
            }));
        }
        Ok(all)
    }

    /// Pooled, not yet normalised, vectors of an already tokenized batch: one
    /// `session.run` on a session of `lane`.
    pub fn pooled_of(&self, batch: &EncodedBatch, lane: Lane) -> Result<Vec<Vec<f32>>> {
        self.pool.with_session(lane, |session| self.run(session, batch))
    }

    /// Embeddings as fixed-size arrays (`N` is the crate's dimension).
    pub fn embed_fixed<const N: usize>(&self, texts: &[&str]) -> Result<Vec<[f32; N]>> {
        self.embed(texts)?
            .into_iter()
            .map(|vector| {
                let length = vector.len();
                vector
                    .try_into()
                    .map_err(|_| Error::OutputShape(format!("an embedding of {length} values, expected {N}")))
            })
            .collect()
    }

    fn run(&self, session: &mut Session, batch: &EncodedBatch) -> Result<Vec<Vec<f32>>> {
        self.spec.pooler().pooled(session, batch, &self.spec.signature)
    }
}

/// One vector per row: the mean under the attention mask, or the first token's.
pub fn pool_tokens(hidden: ArrayView3<'_, f32>, batch: &EncodedBatch, pooling: Pooling) -> Vec<Vec<f32>> {
    let width = hidden.dim().2;
    (0..batch.lengths.len())
        .map(|row| match pooling {
            Pooling::Cls => hidden.slice(ndarray::s![row, 0, ..]).to_vec(),
            Pooling::Mean => {
                // As sentence-transformers: sum of masked vectors over max(mask sum, 1e-9).
                let mut sum = vec![0.0f32; width];
                let mut count = 0.0f32;
                for (column, &mask) in batch.attention_mask.row(row).iter().enumerate() {
                    if mask == 0 {
                        continue;
                    }
                    count += 1.0;
                    for (total, value) in sum.iter_mut().zip(hidden.slice(ndarray::s![row, column, ..])) {
                        *total += value;
                    }
                }
                let count = count.max(1e-9);
                sum.iter_mut().for_each(|value| *value /= count);
                sum
            }
        })
        .collect()
}

/// In place, as `torch.nn.functional.normalize` (norm clamped below at 1e-12).
pub fn l2_normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    vector.iter_mut().for_each(|v| *v /= norm);
}

/// Cosine similarity; 0 when either vector is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = a.iter().map(|v| v * v).sum::<f32>().sqrt() * b.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norms == 0.0 { 0.0 } else { dot / norms }
}

/// The `k` entries of `corpus` most similar to `query` by cosine, best first; ties keep
/// corpus order. Returns (index into corpus, similarity).
pub fn top_k<V: AsRef<[f32]>>(query: &[f32], corpus: &[V], k: usize) -> Vec<(usize, f32)> {
    let mut scored: Vec<(usize, f32)> = corpus
        .iter()
        .enumerate()
        .map(|(index, vector)| (index, cosine(query, vector.as_ref())))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
}

impl TaskModel for SentenceEmbedder {
    fn info(&self) -> &ModelInfo {
        SentenceEmbedder::info(self)
    }

    fn encoder(&self) -> Option<&TextEncoder> {
        Some(SentenceEmbedder::encoder(self))
    }

    fn run_texts(&self, batch: &EncodedBatch, lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(self
            .pooled_of(batch, lane)?
            .into_iter()
            .map(RowOutput::Pooled)
            .collect())
    }

    fn process(&self, inputs: &[Input<'_>]) -> Result<()> {
        self.embed(&texts_of(inputs)?).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array2, Array3};

    use super::*;

    fn batch(mask: Vec<Vec<i64>>) -> EncodedBatch {
        let rows = mask.len();
        let columns = mask[0].len();
        let flat: Vec<i64> = mask.iter().flatten().copied().collect();
        let attention_mask = Array2::from_shape_vec((rows, columns), flat).unwrap();
        EncodedBatch {
            input_ids: Array2::zeros((rows, columns)),
            token_type_ids: Array2::zeros((rows, columns)),
            lengths: mask.iter().map(|m| m.iter().filter(|&&v| v == 1).count()).collect(),
            attention_mask,
        }
    }

    #[test]
    fn mean_pooling_ignores_padding_and_cls_takes_the_first_token() {
        // Row 0 has two real tokens and one pad; row 1 three real tokens.
        let hidden =
            Array3::from_shape_vec((2, 3, 2), vec![1., 2., 3., 4., 100., 100., 1., 1., 2., 2., 3., 3.]).unwrap();
        let encoded = batch(vec![vec![1, 1, 0], vec![1, 1, 1]]);
        let mean = pool_tokens(hidden.view(), &encoded, Pooling::Mean);
        assert_eq!(mean, vec![vec![2.0, 3.0], vec![2.0, 2.0]]);
        let cls = pool_tokens(hidden.view(), &encoded, Pooling::Cls);
        assert_eq!(cls, vec![vec![1.0, 2.0], vec![1.0, 1.0]]);
    }

    #[test]
    fn normalisation_gives_unit_length_and_leaves_zero_vectors_alone() {
        let mut vector = vec![3.0, 4.0];
        l2_normalize(&mut vector);
        assert_eq!(vector, vec![0.6, 0.8]);
        let mut zero = vec![0.0, 0.0];
        l2_normalize(&mut zero);
        assert_eq!(zero, vec![0.0, 0.0]);
    }

    #[test]
    fn top_k_ranks_by_cosine_and_keeps_corpus_order_on_ties() {
        let corpus = [vec![1.0, 0.0], vec![0.0, 1.0], vec![2.0, 0.0], vec![1.0, 1.0]];
        let found = top_k(&[1.0, 0.0], &corpus, 3);
        let indices: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, vec![0, 2, 3]);
        assert!((found[2].1 - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
