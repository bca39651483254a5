//! Token classification (named entities) exactly as the `transformers`
//! token-classification pipeline answers: per-token softmax scores, then
//! `aggregation_strategy` none / simple / first / average / max, `ignore_labels`, and
//! **character** offsets into the text (Python string indices, not UTF-8 bytes), with the
//! `word` of each entity decoded by the tokenizer's own decoder.
//!
//! The steps follow the pipeline's `gather_pre_entities`, `aggregate`, `aggregate_words`
//! and `group_entities` one for one, so that answers compare equal entity by entity.

use std::path::Path;

use ndarray::{Array2, Ix3, s};
use ort::session::Session;
use tokenizers::models::ModelWrapper;
use tokenizers::{Decoder, Encoding, Tokenizer};

use crate::classification::{ClassificationFunction, best, check_labels};
use crate::error::{Error, Result};
use crate::pool::{Lane, SessionPool};
use crate::registry::{Input, LoadOptions, ModelInfo, RowOutput, Task, TaskModel, texts_of};
use crate::signature::Signature;
use crate::text::{EncodedBatch, TextEncoder, TextModelParts};

/// The pipeline's `aggregation_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregationStrategy {
    /// One entity per token, labelled with its BIO label.
    None,
    /// Adjacent tokens of one entity type grouped (`B-`/`I-` rules), tokens scored alone.
    Simple,
    /// As simple, but a word takes the label of its first token.
    First,
    /// As simple, but a word takes the label of its highest mean score over its tokens.
    Average,
    /// As simple, but a word takes the label of its single highest-scoring token.
    Max,
}

impl AggregationStrategy {
    pub const ALL: [Self; 5] = [Self::None, Self::Simple, Self::First, Self::Average, Self::Max];

    /// Parses the pipeline's names, case-insensitively as the pipeline does.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Simple => "simple",
            Self::First => "first",
            Self::Average => "average",
            Self::Max => "max",
        }
    }
}

/// One entity of an answer, as the pipeline returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Strategy `none`: the token's label (`B-PRODUCT`), the pipeline's `entity`. Other
    /// strategies: the entity type (`PRODUCT`), the pipeline's `entity_group`.
    pub label: &'static str,
    /// The id (in `config.json`) of the token's label, or of the group's first label
    /// (`B-PRODUCT` for a `PRODUCT` group): what a generated crate types it by.
    pub label_id: usize,
    pub score: f32,
    /// Strategy `none` only: the token's position in the model input (`[CLS]` is 0).
    pub index: Option<usize>,
    /// The token (`##s`) for `none`; the decoded words of the entity otherwise.
    pub word: String,
    /// Character offsets into the text: `text.chars().skip(start).take(end - start)`.
    pub start: usize,
    pub end: usize,
}

/// A token with everything aggregation needs (the pipeline's "pre-entity").
#[derive(Debug, Clone)]
struct Token {
    word: String,
    scores: Vec<f32>,
    start: usize,
    end: usize,
    index: usize,
    is_subword: bool,
}

/// An entity before `group_entities`: a token's or a word's label id and score.
#[derive(Debug, Clone)]
struct Labelled {
    label: usize,
    score: f32,
    index: usize,
    word: String,
    start: usize,
    end: usize,
}

/// What the post-processing reads from the tokenizer.
pub struct Vocabulary<'t> {
    tokenizer: &'t Tokenizer,
    unk_id: Option<u32>,
    /// The model marks word continuations (`##`): subwords are found by length, as the
    /// pipeline does for such tokenizers; otherwise by the pipeline's whitespace heuristic.
    word_aware: bool,
}

impl<'t> Vocabulary<'t> {
    pub fn new(tokenizer: &'t Tokenizer) -> Self {
        let (unk, word_aware) = match tokenizer.get_model() {
            ModelWrapper::WordPiece(model) => (
                Some(model.unk_token.clone()),
                !model.continuing_subword_prefix.is_empty(),
            ),
            ModelWrapper::BPE(model) => (
                model.unk_token.clone(),
                model.continuing_subword_prefix.as_ref().is_some_and(|p| !p.is_empty()),
            ),
            ModelWrapper::WordLevel(model) => (Some(model.unk_token.clone()), false),
            ModelWrapper::Unigram(_) => (None, false),
        };
        let unk_id = unk.and_then(|token| tokenizer.token_to_id(&token));
        Self {
            tokenizer,
            unk_id,
            word_aware,
        }
    }

    /// The pipeline's `convert_tokens_to_string`: the tokenizer's decoder, or a space join.
    fn join(&self, tokens: Vec<String>) -> Result<String> {
        match self.tokenizer.get_decoder() {
            Some(decoder) => decoder
                .decode(tokens)
                .map_err(|error| Error::Tokenizer(error.to_string())),
            None => Ok(tokens.join(" ")),
        }
    }
}

/// Byte positions of each character of `text`, and of its end: `bytes[i]..bytes[j]` is
/// the text's characters `i..j`.
fn char_boundaries(text: &str) -> Vec<usize> {
    text.char_indices().map(|(byte, _)| byte).chain([text.len()]).collect()
}

/// The pipeline's `gather_pre_entities`: every non-special token with its scores, its
/// character span, and whether it continues the previous word.
fn gather(text: &str, encoding: &Encoding, scores: &Array2<f32>, vocabulary: &Vocabulary) -> Result<Vec<Token>> {
    let bytes = char_boundaries(text);
    let mut tokens = Vec::new();
    let rows = encoding
        .get_tokens()
        .iter()
        .zip(encoding.get_ids())
        .zip(encoding.get_offsets())
        .zip(encoding.get_special_tokens_mask())
        .enumerate();
    for (index, (((token, &id), &(start, end)), &special)) in rows {
        if special != 0 {
            continue;
        }
        let reference = bytes
            .get(start)
            .zip(bytes.get(end))
            .and_then(|(&from, &to)| text.get(from..to))
            .ok_or_else(|| Error::Tokenizer(format!("token {index} has offsets {start}..{end} outside the text")))?;
        let (word, is_subword) = if Some(id) == vocabulary.unk_id {
            (reference.to_string(), false)
        } else if vocabulary.word_aware {
            (token.clone(), token.chars().count() != reference.chars().count())
        } else {
            // `start > 0 and " " not in sentence[start - 1 : start + 1]`
            let around = start
                .checked_sub(1)
                .and_then(|before| bytes.get(before).zip(bytes.get(start + 1).or(bytes.last())))
                .and_then(|(&from, &to)| text.get(from..to));
            (
                token.clone(),
                start > 0 && around.is_some_and(|pair| !pair.contains(' ')),
            )
        };
        tokens.push(Token {
            word,
            scores: scores.row(index).to_vec(),
            start,
            end,
            index,
            is_subword,
        });
    }
    Ok(tokens)
}

/// The pipeline's `aggregate_word`: one label and score for a word's tokens.
fn aggregate_word(word: &[Token], strategy: AggregationStrategy, vocabulary: &Vocabulary) -> Result<Labelled> {
    let (first, last) = match (word.first(), word.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => return Err(Error::OutputShape("an empty word to aggregate".into())),
    };
    let top = match strategy {
        AggregationStrategy::First => best(&first.scores),
        AggregationStrategy::Max => {
            // `max(entities, key=scores.max())`: the first token with the highest score.
            let mut chosen = first;
            let mut highest = best(&first.scores).score;
            for token in &word[1..] {
                let score = best(&token.scores).score;
                if score > highest {
                    chosen = token;
                    highest = score;
                }
            }
            best(&chosen.scores)
        }
        AggregationStrategy::Average => {
            let mut sums = vec![0.0f32; first.scores.len()];
            for token in word {
                for (sum, score) in sums.iter_mut().zip(&token.scores) {
                    *sum += score;
                }
            }
            let count = word.len() as f32;
            let means: Vec<f32> = sums.into_iter().map(|sum| sum / count).collect();
            best(&means)
        }
        AggregationStrategy::None | AggregationStrategy::Simple => {
            return Err(Error::OutputShape(format!(
                "strategy {} does not aggregate words",
                strategy.as_str()
            )));
        }
    };
    Ok(Labelled {
        label: top.id,
        score: top.score,
        index: first.index,
        word: vocabulary.join(word.iter().map(|t| t.word.clone()).collect())?,
        start: first.start,
        end: last.end,
    })
}

/// The pipeline's `get_tag`: (`B` or `I`, type); a label without a prefix continues.
fn tag(label: &str) -> (char, &str) {
    if let Some(kind) = label.strip_prefix("B-") {
        ('B', kind)
    } else if let Some(kind) = label.strip_prefix("I-") {
        ('I', kind)
    } else {
        ('I', label)
    }
}

/// The entity type a group is named by: the label after its first `-` (`split("-", 1)[-1]`).
fn group_name(label: &'static str) -> &'static str {
    label.split_once('-').map_or(label, |(_, kind)| kind)
}

/// The entity types `labels` name, as the pipeline names groups (`B-PRODUCT` →
/// `PRODUCT`), in first-seen order, `O` left out.
pub fn entity_types(labels: &[&'static str]) -> Vec<&'static str> {
    let mut types = Vec::new();
    for label in labels.iter().filter(|label| **label != "O") {
        let kind = group_name(label);
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    types
}

/// The pipeline's `group_sub_entities` for one run of entities.
fn group(run: &[Labelled], labels: &[&'static str], vocabulary: &Vocabulary) -> Result<Entity> {
    let (first, last) = match (run.first(), run.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => return Err(Error::OutputShape("an empty entity group".into())),
    };
    let score = run.iter().map(|e| e.score).sum::<f32>() / run.len() as f32;
    Ok(Entity {
        label: group_name(label_of(labels, first.label)?),
        label_id: first.label,
        score,
        index: None,
        word: vocabulary.join(run.iter().map(|e| e.word.clone()).collect())?,
        start: first.start,
        end: last.end,
    })
}

fn label_of(labels: &[&'static str], id: usize) -> Result<&'static str> {
    labels
        .get(id)
        .copied()
        .ok_or_else(|| Error::OutputShape(format!("label id {id} of {} labels", labels.len())))
}

/// The pipeline's `group_entities`: adjacent entities of one type join unless the next
/// one begins a new entity (`B-`).
fn group_entities(entities: Vec<Labelled>, labels: &[&'static str], vocabulary: &Vocabulary) -> Result<Vec<Entity>> {
    let mut groups = Vec::new();
    let mut run: Vec<Labelled> = Vec::new();
    for entity in entities {
        if let Some(previous) = run.last() {
            let (bi, kind) = tag(label_of(labels, entity.label)?);
            let (_, previous_kind) = tag(label_of(labels, previous.label)?);
            if kind != previous_kind || bi == 'B' {
                groups.push(group(&run, labels, vocabulary)?);
                run.clear();
            }
        }
        run.push(entity);
    }
    if !run.is_empty() {
        groups.push(group(&run, labels, vocabulary)?);
    }
    Ok(groups)
}

/// The entities of one text from its per-token logits `[tokens, labels]`.
pub fn entities(
    text: &str,
    encoding: &Encoding,
    logits: &Array2<f32>,
    labels: &[&'static str],
    strategy: AggregationStrategy,
    ignore_labels: &[&str],
    vocabulary: &Vocabulary,
) -> Result<Vec<Entity>> {
    if logits.nrows() != encoding.len() || logits.ncols() != labels.len() {
        return Err(Error::OutputShape(format!(
            "logits {:?} for {} tokens and {} labels",
            logits.dim(),
            encoding.len(),
            labels.len()
        )));
    }
    let mut scores = logits.clone();
    for mut row in scores.rows_mut() {
        let softmax = ClassificationFunction::Softmax.apply(&row.to_vec());
        row.iter_mut().zip(softmax).for_each(|(score, value)| *score = value);
    }
    let tokens = gather(text, encoding, &scores, vocabulary)?;
    let labelled: Vec<Labelled> = match strategy {
        AggregationStrategy::None | AggregationStrategy::Simple => tokens
            .into_iter()
            .map(|token| {
                let top = best(&token.scores);
                Labelled {
                    label: top.id,
                    score: top.score,
                    index: token.index,
                    word: token.word,
                    start: token.start,
                    end: token.end,
                }
            })
            .collect(),
        _ => {
            // The pipeline's `aggregate_words`: a word is a token and the subwords after it.
            let mut words = Vec::new();
            let mut word: Vec<Token> = Vec::new();
            for token in tokens {
                if !word.is_empty() && !token.is_subword {
                    words.push(aggregate_word(&word, strategy, vocabulary)?);
                    word.clear();
                }
                word.push(token);
            }
            if !word.is_empty() {
                words.push(aggregate_word(&word, strategy, vocabulary)?);
            }
            words
        }
    };
    let answer = if strategy == AggregationStrategy::None {
        labelled
            .into_iter()
            .map(|e| {
                Ok(Entity {
                    label: label_of(labels, e.label)?,
                    label_id: e.label,
                    score: e.score,
                    index: Some(e.index),
                    word: e.word,
                    start: e.start,
                    end: e.end,
                })
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        group_entities(labelled, labels, vocabulary)?
    };
    Ok(answer
        .into_iter()
        .filter(|entity| !ignore_labels.contains(&entity.label))
        .collect())
}

/// What a generated crate knows of its token classifier, as constants.
#[derive(Debug, Clone, Copy)]
pub struct TokenClassifierSpec {
    pub name: &'static str,
    pub signature: Signature,
    /// The output holding `[batch, tokens, labels]` logits.
    pub logits_output: &'static str,
    /// BIO labels in `config.json` id order.
    pub labels: &'static [&'static str],
    pub max_length: usize,
}

/// A loaded token classifier: tokenizer, session pool, labels.
pub struct TokenClassifier {
    info: ModelInfo,
    spec: TokenClassifierSpec,
    encoder: TextEncoder,
    pool: SessionPool,
    max_batch_size: usize,
}

/// The labels the pipeline leaves out by default.
pub const DEFAULT_IGNORE_LABELS: [&str; 1] = ["O"];

impl TokenClassifier {
    /// Loads the chosen variant of `dir`, refusing an artifact whose signature or labels
    /// differ from `spec`.
    pub fn load(dir: &Path, spec: TokenClassifierSpec, options: &LoadOptions) -> Result<Self> {
        check_labels(&dir.join("config.json"), spec.labels)?;
        let parts = TextModelParts::open(dir, &spec.signature, spec.max_length, options)?;
        let info = ModelInfo {
            labels: spec.labels,
            ..parts.info(spec.name, Task::TokenClassification, spec.max_length, spec.signature)
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

    /// Per-token logits `[tokens, labels]` of each text (special tokens included), with
    /// the encodings (character offsets) they belong to.
    pub fn token_logits(&self, texts: &[&str]) -> Result<Vec<(Encoding, Array2<f32>)>> {
        let mut all = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.max_batch_size) {
            let encodings = self.encoder.char_encodings(chunk)?;
            let batch = self.encoder.pad(&encodings);
            let logits = self.logits_of(&batch, Lane::Any)?;
            for (row, encoding) in encodings.into_iter().enumerate() {
                let rows = logits.slice(s![row, ..encoding.len(), ..]).to_owned();
                all.push((encoding, rows));
            }
        }
        Ok(all)
    }

    /// The entities of each text, as the pipeline answers with `aggregation_strategy`
    /// and `ignore_labels` (`["O"]` when `None`).
    pub fn entities(
        &self,
        texts: &[&str],
        strategy: AggregationStrategy,
        ignore_labels: Option<&[&str]>,
    ) -> Result<Vec<Vec<Entity>>> {
        texts
            .iter()
            .zip(self.token_logits(texts)?)
            .map(|(text, (encoding, logits))| self.entities_of(text, &encoding, &logits, strategy, ignore_labels))
            .collect()
    }

    /// The entities of one text from its encoding (character offsets) and its per-token
    /// logits, as [`TokenClassifier::entities`] finds them: the engine's post-processing.
    pub fn entities_of(
        &self,
        text: &str,
        encoding: &Encoding,
        logits: &Array2<f32>,
        strategy: AggregationStrategy,
        ignore_labels: Option<&[&str]>,
    ) -> Result<Vec<Entity>> {
        let ignore = ignore_labels.unwrap_or(&DEFAULT_IGNORE_LABELS);
        let vocabulary = Vocabulary::new(self.encoder.tokenizer());
        entities(text, encoding, logits, self.spec.labels, strategy, ignore, &vocabulary)
    }

    /// Logits `[batch, tokens, labels]` of an already tokenized batch: one `session.run`
    /// on a session of `lane`.
    pub fn logits_of(&self, batch: &EncodedBatch, lane: Lane) -> Result<ndarray::Array3<f32>> {
        self.pool.with_session(lane, |session| self.run(session, batch))
    }

    fn run(&self, session: &mut Session, batch: &EncodedBatch) -> Result<ndarray::Array3<f32>> {
        let outputs = session.run(batch.session_inputs(&self.spec.signature)?)?;
        let output = outputs
            .get(self.spec.logits_output)
            .ok_or_else(|| Error::OutputShape(format!("no output named `{}`", self.spec.logits_output)))?;
        let logits = output
            .try_extract_array::<f32>()?
            .into_dimensionality::<Ix3>()
            .map_err(|error| Error::OutputShape(error.to_string()))?;
        let (rows, columns) = batch.input_ids.dim();
        let expected = (rows, columns, self.spec.labels.len());
        if logits.dim() != expected {
            return Err(Error::OutputShape(format!("{:?}, expected {expected:?}", logits.dim())));
        }
        Ok(logits.to_owned())
    }
}

impl TaskModel for TokenClassifier {
    fn info(&self) -> &ModelInfo {
        TokenClassifier::info(self)
    }

    fn encoder(&self) -> Option<&TextEncoder> {
        Some(TokenClassifier::encoder(self))
    }

    /// With character offsets: the answers quote spans of the text.
    fn encode(&self, texts: &[&str]) -> Result<Vec<Encoding>> {
        TokenClassifier::encoder(self).char_encodings(texts)
    }

    fn run_texts(&self, batch: &EncodedBatch, lane: Lane) -> Result<Vec<RowOutput>> {
        let logits = self.logits_of(batch, lane)?;
        Ok(batch
            .lengths
            .iter()
            .enumerate()
            .map(|(row, &length)| RowOutput::TokenLogits(logits.slice(s![row, ..length, ..]).to_owned()))
            .collect())
    }

    fn run_encoded(&self, batch: &EncodedBatch, lane: Lane) -> Result<()> {
        self.logits_of(batch, lane).map(drop)
    }

    fn entities_of(
        &self,
        text: &str,
        encoding: &Encoding,
        logits: &Array2<f32>,
        strategy: AggregationStrategy,
        ignore_labels: Option<&[&str]>,
    ) -> Result<Vec<Entity>> {
        TokenClassifier::entities_of(self, text, encoding, logits, strategy, ignore_labels)
    }

    fn process(&self, inputs: &[Input<'_>]) -> Result<()> {
        self.entities(&texts_of(inputs)?, AggregationStrategy::Simple, None)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABELS: [&str; 5] = ["O", "B-PRODUCT", "I-PRODUCT", "B-VERSION", "I-VERSION"];

    #[test]
    fn strategies_parse_case_insensitively() {
        assert_eq!(AggregationStrategy::parse("Simple"), Some(AggregationStrategy::Simple));
        assert_eq!(AggregationStrategy::parse("MAX"), Some(AggregationStrategy::Max));
        assert_eq!(AggregationStrategy::parse("longest"), None);
    }

    #[test]
    fn tags_split_as_the_pipeline_splits_them() {
        assert_eq!(tag("B-PRODUCT"), ('B', "PRODUCT"));
        assert_eq!(tag("I-VERSION"), ('I', "VERSION"));
        assert_eq!(tag("O"), ('I', "O"));
        assert_eq!(group_name("B-PRODUCT"), "PRODUCT");
        assert_eq!(group_name("O"), "O");
        assert_eq!(group_name("B-SUB-TYPE"), "SUB-TYPE");
    }

    #[test]
    fn character_boundaries_count_characters_not_bytes() {
        let text = "Zürich 🎉 v1";
        let bytes = char_boundaries(text);
        assert_eq!(bytes.len(), text.chars().count() + 1);
        // characters 7..8 are the emoji (4 bytes)
        assert_eq!(&text[bytes[7]..bytes[8]], "🎉");
        assert_eq!(&text[bytes[9]..bytes[11]], "v1");
    }

    fn labelled(label: usize, score: f32, word: &str, start: usize, end: usize) -> Labelled {
        Labelled {
            label,
            score,
            index: start,
            word: word.into(),
            start,
            end,
        }
    }

    fn tokenizer() -> Tokenizer {
        // A WordPiece vocabulary with the BERT decoder, as MiniLM's tokenizer.json has.
        let json = r###"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":null,"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":null,
            "decoder":{"type":"WordPiece","prefix":"##","cleanup":true},
            "model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
            "max_input_chars_per_word":100,"vocab":{"[UNK]":0,"node":1,".":2,"js":3,"v":4,"##2":5,"2":6}}}"###;
        match Tokenizer::from_bytes(json) {
            Ok(tokenizer) => tokenizer,
            Err(error) => panic!("test tokenizer: {error}"),
        }
    }

    #[test]
    fn groups_join_inside_and_split_on_b_or_type_change() {
        let tokenizer = tokenizer();
        let vocabulary = Vocabulary::new(&tokenizer);
        let entities = vec![
            labelled(1, 0.9, "node", 0, 4),
            labelled(2, 0.8, ".", 4, 5),
            labelled(2, 0.7, "js", 5, 7),
            labelled(3, 0.6, "v", 8, 9),
            labelled(4, 0.5, "##2", 9, 10),
            labelled(3, 0.4, "2", 11, 12),
            labelled(0, 0.3, "2", 13, 14),
        ];
        let groups = group_entities(entities, &LABELS, &vocabulary).unwrap();
        let shown: Vec<(&str, &str, usize, usize)> = groups
            .iter()
            .map(|g| (g.label, g.word.as_str(), g.start, g.end))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("PRODUCT", "node. js", 0, 7),
                ("VERSION", "v2", 8, 10),
                ("VERSION", "2", 11, 12),
                ("O", "2", 13, 14),
            ]
        );
        assert!((groups[0].score - 0.8).abs() < 1e-6);
    }

    fn token(scores: [f32; 5], word: &str, start: usize, end: usize, is_subword: bool) -> Token {
        Token {
            word: word.into(),
            scores: scores.to_vec(),
            start,
            end,
            index: start,
            is_subword,
        }
    }

    #[test]
    fn word_strategies_pick_first_max_and_average_labels() {
        let tokenizer = tokenizer();
        let vocabulary = Vocabulary::new(&tokenizer);
        let word = [
            token([0.5, 0.1, 0.0, 0.4, 0.0], "v", 0, 1, false),
            token([0.0, 0.0, 0.0, 0.1, 0.9], "##2", 1, 2, true),
        ];
        let first = aggregate_word(&word, AggregationStrategy::First, &vocabulary).unwrap();
        assert_eq!((first.label, first.word.as_str(), first.end), (0, "v2", 2));
        let max = aggregate_word(&word, AggregationStrategy::Max, &vocabulary).unwrap();
        assert_eq!((max.label, max.score), (4, 0.9));
        let average = aggregate_word(&word, AggregationStrategy::Average, &vocabulary).unwrap();
        assert_eq!(average.label, 4);
        assert!((average.score - 0.45).abs() < 1e-6);
        assert!(aggregate_word(&word, AggregationStrategy::Simple, &vocabulary).is_err());
    }
}
