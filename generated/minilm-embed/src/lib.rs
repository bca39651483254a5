#![doc = include_str!("../README.md")]
//!
//! ```no_run
//! let model = minilm_embed::load("artifacts/minilm-embed/onnx".as_ref())?;
//! let articles = model.embed(&["Shares rose after the bank cut interest rates.", "The striker scored twice."])?;
//! for (index, similarity) in model.search("Interest rate cut lifts markets", &articles, 1)? {
//!     println!("article {index}: {similarity:.3}");
//! }
//! # Ok::<(), modelcrate_runtime::Error>(())
//! ```

use std::path::Path;

use modelcrate_runtime::embedding::{self, Pooling, SentenceEmbedder, SentenceEmbedderSpec};
use modelcrate_runtime::signature::{DType, Signature, TensorSpec};
use modelcrate_runtime::{LoadOptions, ModelEntry, ModelInfo, Result, Task, TaskModel};

/// The model's name: its spec file, artifact folder and route.
pub const NAME: &str = "minilm-embed";
/// Longest input in tokens, special tokens included; longer texts are truncated.
pub const MAX_LENGTH: usize = 256;
/// ONNX input names, in the graph's order.
pub const INPUT_NAMES: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];
/// The ONNX output of token vectors this crate pools.
pub const HIDDEN_OUTPUT: &str = "last_hidden_state";
/// Length of every embedding.
pub const DIMENSION: usize = 384;
/// How token vectors become one vector.
pub const POOLING: Pooling = Pooling::Mean;
/// Whether embeddings are L2-normalised (then cosine similarity is their dot product).
pub const NORMALIZE: bool = true;

/// The ONNX signature this crate was generated from; [`load`] refuses any other.
pub const SIGNATURE: Signature = Signature {
    inputs: &[
        TensorSpec {
            name: "input_ids",
            dtype: DType::Int64,
            dims: &[None, None],
        },
        TensorSpec {
            name: "attention_mask",
            dtype: DType::Int64,
            dims: &[None, None],
        },
        TensorSpec {
            name: "token_type_ids",
            dtype: DType::Int64,
            dims: &[None, None],
        },
    ],
    outputs: &[TensorSpec {
        name: "last_hidden_state",
        dtype: DType::Float32,
        dims: &[None, None, Some(384)],
    }],
};

/// One text's embedding.
pub type Embedding = [f32; DIMENSION];

const SPEC: SentenceEmbedderSpec = SentenceEmbedderSpec {
    name: NAME,
    signature: SIGNATURE,
    hidden_output: HIDDEN_OUTPUT,
    dimension: DIMENSION,
    pooling: POOLING,
    normalize: NORMALIZE,
    max_length: MAX_LENGTH,
};

/// The loaded model. Cheap to share: clone an `Arc` of it across threads.
pub struct Model {
    embedder: SentenceEmbedder,
}

/// Loads the serving variant of `dir` (the one `dir/serving.json` names; `model.onnx`
/// without it) with its tokenizer and pooling, checking them against this crate.
pub fn load(dir: &Path) -> Result<Model> {
    load_with(dir, &LoadOptions::default())
}

/// Loads with a chosen variant (`LoadOptions::variant`: any of `dir/variants.json`, which
/// share this crate's signature) and thread layout.
pub fn load_with(dir: &Path, options: &LoadOptions) -> Result<Model> {
    Ok(Model {
        embedder: SentenceEmbedder::load(dir, SPEC, options)?,
    })
}

impl Model {
    /// One embedding per text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Embedding>> {
        self.embedder.embed_fixed(texts)
    }

    /// The `k` entries of `corpus` nearest to `query`'s embedding, best first, as
    /// (index into `corpus`, cosine similarity).
    pub fn search(&self, query: &str, corpus: &[Embedding], k: usize) -> Result<Vec<(usize, f32)>> {
        let query = self.embedder.embed(&[query])?;
        Ok(query.first().map(|query| top_k(query, corpus, k)).unwrap_or_default())
    }

    /// What was loaded: name, task, variant (and why it serves), signature.
    pub fn info(&self) -> &ModelInfo {
        self.embedder.info()
    }
}

/// Cosine similarity of two embeddings.
pub fn similarity(a: &Embedding, b: &Embedding) -> f32 {
    embedding::cosine(a, b)
}

/// The `k` entries of `corpus` most similar to `query`, best first; ties keep corpus order.
pub fn top_k(query: &[f32], corpus: &[Embedding], k: usize) -> Vec<(usize, f32)> {
    embedding::top_k(query, corpus, k)
}

/// The model card (`README.md`, Markdown): what the server shows at `/models/{name}`.
pub const CARD: &str = include_str!("../README.md");

/// This model as the umbrella crate lists it for the server.
pub const ENTRY: ModelEntry = ModelEntry {
    name: NAME,
    task: Task::FeatureExtraction,
    card: CARD,
    load: load_entry,
};

fn load_entry(dir: &Path, options: &LoadOptions) -> Result<Box<dyn TaskModel>> {
    Ok(Box::new(load_with(dir, options)?.embedder))
}
