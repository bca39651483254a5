//! Extractive question answering as the `transformers` question-answering pipeline does
//! it: the question and the context as one pair of sequences, a context too long for one
//! window cut into windows that overlap by `doc_stride` tokens, and from each window's
//! start and end logits the best spans of the context, merged across windows.
//!
//! What the pipeline does, step by step, and so what this module does:
//! - each window is the pair encoded with truncation `only_second` at `max_seq_len` and
//!   stride `doc_stride` (the tokenizer's own windowing, so the windows are the same);
//! - in a window, only context tokens and `[CLS]` may hold an answer: every other
//!   logit is set to −10000, and start and end logits each go through a softmax over the
//!   window;
//! - with `handle_impossible_answer`, the no-answer score is the lowest, over the
//!   windows, of `[CLS]`'s start probability times its end probability;
//! - `[CLS]` is then zeroed, and a span `(s, e)` scores `p_start[s] · p_end[e]` for
//!   `s ≤ e < s + max_answer_len`; the best `top_k` spans (`2·top_k + 10` when aligning to
//!   words, since alignment may merge some) are kept if both ends may hold an answer;
//! - a span becomes characters of the context: with `align_to_words`, from the start of
//!   its first token's word to the end of its last token's word (a token with no word,
//!   `[CLS]`, keeps its own offsets); otherwise its tokens' offsets;
//! - answers whose text is the same but for case (from overlapping windows, or spans
//!   aligned to the same words) are one answer with the sum of their scores; the
//!   no-answer (`""` at 0) is added when allowed; the `top_k` best are returned.
//!
//! Offsets are characters of the context (Python's string indices), and `answer` is
//! always the context's characters `start..end`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use ort::session::Session;
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::classification::logits_output;
use crate::error::{Error, Result};
use crate::pool::{Lane, SessionPool};
use crate::registry::{Input, LoadOptions, ModelInfo, RowOutput, Task, TaskModel};
use crate::signature::Signature;
use crate::text::{EncodedBatch, TextEncoder, TextModelParts};

/// The pipeline's defaults.
pub const DEFAULT_TOP_K: usize = 1;
pub const DEFAULT_MAX_ANSWER_LEN: usize = 15;
pub const DEFAULT_MAX_QUESTION_LEN: usize = 64;
/// `max_seq_len` defaults to the tokenizer's max length, at most this.
pub const DEFAULT_MAX_SEQ_LEN_CAP: usize = 384;
/// `doc_stride` defaults to half the window, at most this.
pub const DEFAULT_DOC_STRIDE_CAP: usize = 128;

/// What the pipeline gives a logit that may not hold an answer.
const MASKED_LOGIT: f32 = -10000.0;
/// The pipeline's starting no-answer score, "large and positive".
const NO_NULL_SCORE: f64 = 1_000_000.0;
/// How many windowing tokenizers (one per `max_seq_len` and `doc_stride`) are kept.
const KEPT_WINDOWINGS: usize = 4;

/// The question-answering pipeline's parameters, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerOptions {
    /// How many answers, best first (fewer when the context has fewer).
    pub top_k: usize,
    /// Tokens two consecutive windows share; half the window (at most 128) when `None`.
    pub doc_stride: Option<usize>,
    /// Longest answer, in tokens.
    pub max_answer_len: usize,
    /// Tokens of a window, question and special tokens included; the model's max length
    /// (at most 384) when `None`.
    pub max_seq_len: Option<usize>,
    /// Longest question, in tokens: a longer one is refused.
    pub max_question_len: usize,
    /// Whether "no answer" (`""` at 0) is one of the answers.
    pub handle_impossible_answer: bool,
    /// Whether a span is widened to whole words.
    pub align_to_words: bool,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        Self {
            top_k: DEFAULT_TOP_K,
            doc_stride: None,
            max_answer_len: DEFAULT_MAX_ANSWER_LEN,
            max_seq_len: None,
            max_question_len: DEFAULT_MAX_QUESTION_LEN,
            handle_impossible_answer: false,
            align_to_words: true,
        }
    }
}

/// How a context is cut into windows: `max_seq_len` tokens each, `doc_stride` shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windowing {
    pub max_seq_len: usize,
    pub doc_stride: usize,
}

impl AnswerOptions {
    /// The windowing these options ask for on a model whose tokenizer's max length is
    /// `model_max_length` and whose position embeddings hold `max_positions` tokens.
    pub fn windowing(&self, model_max_length: usize, max_positions: usize) -> Result<Windowing> {
        if self.top_k == 0 {
            return Err(Error::Input("`top_k` must be at least 1".into()));
        }
        if self.max_answer_len == 0 {
            return Err(Error::Input("`max_answer_len` must be at least 1".into()));
        }
        let max_seq_len = self
            .max_seq_len
            .unwrap_or_else(|| model_max_length.min(DEFAULT_MAX_SEQ_LEN_CAP));
        if max_seq_len > max_positions {
            return Err(Error::Input(format!(
                "`max_seq_len` is {max_seq_len}, more than the model's {max_positions} positions"
            )));
        }
        let doc_stride = self
            .doc_stride
            .unwrap_or_else(|| (max_seq_len / 2).min(DEFAULT_DOC_STRIDE_CAP));
        if doc_stride > max_seq_len {
            return Err(Error::Input(format!(
                "`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})"
            )));
        }
        Ok(Windowing {
            max_seq_len,
            doc_stride,
        })
    }
}

/// One answer: a span of the context (character offsets) and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The span's probability (summed over the windows and spans that give the same
    /// text); for the no-answer, the lowest `[CLS]` probability over the windows.
    pub score: f64,
    /// First character of the answer in the context.
    pub start: usize,
    /// One past its last character.
    pub end: usize,
    /// The context's characters `start..end` (`""` for the no-answer).
    pub answer: String,
}

/// A window's start and end logits, one per token of the window.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLogits {
    pub start: Vec<f32>,
    pub end: Vec<f32>,
}

/// The tokenizer of a question-answering model, cutting (question, context) pairs into
/// windows as the pipeline's tokenizer does.
pub struct QuestionTokenizer {
    /// No truncation, no padding: a pair that fits is one window as it is.
    tokenizer: Tokenizer,
    cls_id: Option<u32>,
    /// Special tokens a pair gets (`[CLS] q [SEP] c [SEP]`: 3).
    pair_specials: usize,
    /// Tokenizers that truncate `only_second` with a stride, by windowing, most recent last.
    windowing: Mutex<Vec<(Windowing, Arc<Tokenizer>)>>,
}

impl QuestionTokenizer {
    pub fn new(mut tokenizer: Tokenizer) -> Result<Self> {
        tokenizer
            .with_truncation(None)
            .map_err(|error| Error::Tokenizer(error.to_string()))?;
        tokenizer.with_padding(None);
        let cls_id = tokenizer.token_to_id("[CLS]");
        let pair_specials = tokenizer
            .get_post_processor()
            .map_or(0, |processor| processor.added_tokens(true));
        Ok(Self {
            tokenizer,
            cls_id,
            pair_specials,
            windowing: Mutex::new(Vec::new()),
        })
    }

    /// The id of `[CLS]`, which may hold the no-answer.
    pub fn cls_id(&self) -> Option<u32> {
        self.cls_id
    }

    /// The windows of `question` over `context` (character offsets), each as the model
    /// takes it; refused, naming the field, when the question is empty or longer than
    /// `max_question_len`, the context is empty, or the question leaves no room for the
    /// context or for the stride in a window.
    pub fn windows(
        &self,
        question: &str,
        context: &str,
        windowing: Windowing,
        max_question_len: usize,
    ) -> Result<Vec<Encoding>> {
        if question.trim().is_empty() {
            return Err(Error::Input("`question` cannot be empty".into()));
        }
        if context.trim().is_empty() {
            return Err(Error::Input("`context` cannot be empty".into()));
        }
        let whole = self
            .tokenizer
            .encode_char_offsets((question, context), true)
            .map_err(|error| Error::Tokenizer(error.to_string()))?;
        let question_tokens = whole.get_sequence_ids().iter().filter(|&&s| s == Some(0)).count();
        if question_tokens > max_question_len {
            return Err(Error::Input(format!(
                "`question` is {question_tokens} tokens, more than `max_question_len` ({max_question_len})"
            )));
        }
        if whole.len() <= windowing.max_seq_len {
            return Ok(vec![whole]);
        }
        let room = windowing
            .max_seq_len
            .checked_sub(question_tokens + self.pair_specials)
            .filter(|&room| room > 0)
            .ok_or_else(|| {
                Error::Input(format!(
                    "`question` is {question_tokens} tokens: with {} special tokens it leaves no room for the context in windows of `max_seq_len` {}",
                    self.pair_specials, windowing.max_seq_len
                ))
            })?;
        if windowing.doc_stride >= room {
            return Err(Error::Input(format!(
                "`doc_stride` ({}) must be less than the context tokens a window holds ({room}: `max_seq_len` {} less the question's {question_tokens} and {} special tokens)",
                windowing.doc_stride, windowing.max_seq_len, self.pair_specials
            )));
        }
        let mut first = self
            .windowing_tokenizer(windowing)?
            .encode_char_offsets((question, context), true)
            .map_err(|error| Error::Tokenizer(error.to_string()))?;
        let rest = first.take_overflowing();
        Ok(std::iter::once(first).chain(rest).collect())
    }

    /// The tokenizer that cuts pairs as `windowing` says, made once per windowing.
    fn windowing_tokenizer(&self, windowing: Windowing) -> Result<Arc<Tokenizer>> {
        let mut kept = self
            .windowing
            .lock()
            .map_err(|_| Error::Tokenizer("a thread panicked while holding the windowing tokenizers".into()))?;
        if let Some(index) = kept.iter().position(|(known, _)| *known == windowing) {
            let entry = kept.remove(index);
            let tokenizer = Arc::clone(&entry.1);
            kept.push(entry);
            return Ok(tokenizer);
        }
        let mut tokenizer = self.tokenizer.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: windowing.max_seq_len,
                strategy: TruncationStrategy::OnlySecond,
                stride: windowing.doc_stride,
                direction: TruncationDirection::Right,
            }))
            .map_err(|error| Error::Tokenizer(error.to_string()))?;
        let tokenizer = Arc::new(tokenizer);
        if kept.len() == KEPT_WINDOWINGS {
            kept.remove(0);
        }
        kept.push((windowing, Arc::clone(&tokenizer)));
        Ok(tokenizer)
    }
}

/// The answers to one question over `context`, from its `windows` (as
/// [`QuestionTokenizer::windows`] made them) and each window's logits, as the pipeline
/// chooses them.
pub fn answers(
    context: &str,
    windows: &[Encoding],
    logits: &[SpanLogits],
    cls_id: Option<u32>,
    options: &AnswerOptions,
) -> Result<Vec<Answer>> {
    if windows.len() != logits.len() {
        return Err(Error::OutputShape(format!(
            "{} windows but logits for {}",
            windows.len(),
            logits.len()
        )));
    }
    let characters = char_boundaries(context);
    let candidates_per_window = if options.align_to_words {
        options.top_k.saturating_mul(2).saturating_add(10)
    } else {
        options.top_k
    };
    let mut null_score = NO_NULL_SCORE;
    // Each answer with its text lower-cased: the key the pipeline merges answers by.
    let mut found: Vec<(String, Answer)> = Vec::new();
    for (window, logits) in windows.iter().zip(logits) {
        let length = window.len();
        if logits.start.len() != length || logits.end.len() != length {
            return Err(Error::OutputShape(format!(
                "a window of {length} tokens has {} start and {} end logits",
                logits.start.len(),
                logits.end.len()
            )));
        }
        let may_answer = answerable_tokens(window, cls_id);
        let mut start = masked_softmax(&logits.start, &may_answer);
        let mut end = masked_softmax(&logits.end, &may_answer);
        if options.handle_impossible_answer && length > 0 {
            null_score = null_score.min(f64::from(start[0] * end[0]));
        }
        if length > 0 {
            start[0] = 0.0;
            end[0] = 0.0;
        }
        for (first, last, score) in best_spans(&start, &end, candidates_per_window, options.max_answer_len) {
            if !(may_answer[first] && may_answer[last]) {
                continue;
            }
            let (from, to) = span_characters(window, first, last, options.align_to_words);
            let text = slice(context, &characters, from, to);
            let lowered = text.to_lowercase();
            match found.iter_mut().find(|(key, _)| *key == lowered) {
                Some((_, answer)) => answer.score += f64::from(score),
                None => found.push((
                    lowered,
                    Answer {
                        score: f64::from(score),
                        start: from,
                        end: to,
                        answer: text,
                    },
                )),
            }
        }
    }
    let mut found: Vec<Answer> = found.into_iter().map(|(_, answer)| answer).collect();
    if options.handle_impossible_answer {
        found.push(Answer {
            score: null_score,
            start: 0,
            end: 0,
            answer: String::new(),
        });
    }
    // Stable, as Python's `sorted`: equal scores keep the order they were found in.
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found.truncate(options.top_k);
    Ok(found)
}

/// Which tokens of a window may hold an answer: the context's, and `[CLS]`.
fn answerable_tokens(window: &Encoding, cls_id: Option<u32>) -> Vec<bool> {
    window
        .get_sequence_ids()
        .iter()
        .zip(window.get_ids())
        .zip(window.get_attention_mask())
        .map(|((sequence, &id), &mask)| (*sequence == Some(1) || Some(id) == cls_id) && mask == 1)
        .collect()
}

/// The softmax of `logits` with every token that may not answer at −10000, in `f32` as
/// the pipeline computes it.
fn masked_softmax(logits: &[f32], may_answer: &[bool]) -> Vec<f32> {
    let masked: Vec<f32> = logits
        .iter()
        .zip(may_answer)
        .map(|(&logit, &allowed)| if allowed { logit } else { MASKED_LOGIT })
        .collect();
    let highest = masked.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exponentials: Vec<f32> = masked.iter().map(|&logit| (logit - highest).exp()).collect();
    let sum = numpy_sum(&exponentials);
    exponentials.into_iter().map(|value| value / sum).collect()
}

/// The sum of `values` in `f32` in NumPy's order (`pairwise_sum` in its loops): fewer than
/// 8 values one by one; up to 128 in eight running sums added as a tree, then the rest
/// one by one; more split in two halves (the first a multiple of 8 long) summed each the
/// same way. A plain running sum of a 384-token window's exponentials differs from
/// NumPy's in the last digits, and a score's last digits with it.
fn numpy_sum(values: &[f32]) -> f32 {
    const BLOCK: usize = 128;
    const UNROLL: usize = 8;
    let n = values.len();
    if n < UNROLL {
        values.iter().fold(0.0, |sum, &value| sum + value)
    } else if n <= BLOCK {
        let mut lanes = [0.0f32; UNROLL];
        lanes.copy_from_slice(&values[..UNROLL]);
        let whole = n - n % UNROLL;
        for chunk in values[UNROLL..whole].chunks_exact(UNROLL) {
            for (lane, &value) in lanes.iter_mut().zip(chunk) {
                *lane += value;
            }
        }
        let tree = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        values[whole..].iter().fold(tree, |sum, &value| sum + value)
    } else {
        let half = n / 2;
        let half = half - half % UNROLL;
        numpy_sum(&values[..half]) + numpy_sum(&values[half..])
    }
}

/// The `count` best spans `(first, last, score)` with `first ≤ last < first +
/// max_answer_len`, best first (equal scores in row-major order); every pair of tokens is
/// a candidate, so spans of score 0 fill the list when too few score above it, as in
/// the pipeline.
fn best_spans(start: &[f32], end: &[f32], count: usize, max_answer_len: usize) -> Vec<(usize, usize, f32)> {
    let length = start.len();
    let score = |first: usize, last: usize| {
        if last >= first && last - first < max_answer_len {
            start[first] * end[last]
        } else {
            0.0
        }
    };
    // Candidates above 0 are the spans in the band; the rest of the matrix is 0.
    let mut spans: Vec<(usize, usize, f32)> = Vec::new();
    for first in 0..length {
        for last in first..length.min(first.saturating_add(max_answer_len)) {
            let value = score(first, last);
            if value > 0.0 {
                spans.push((first, last, value));
            }
        }
    }
    spans.sort_by(|a, b| b.2.total_cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    spans.truncate(count);
    // Too few above 0: the matrix's zeros follow, in row-major order.
    let mut first = 0;
    let mut last = 0;
    while spans.len() < count && first < length {
        if score(first, last) <= 0.0 {
            spans.push((first, last, 0.0));
        }
        last += 1;
        if last == length {
            last = 0;
            first += 1;
        }
    }
    spans
}

/// The characters of the context a span of tokens covers: widened to whole words when
/// asked (a token without a word keeps its own offsets, as the pipeline's fallback does).
fn span_characters(window: &Encoding, first: usize, last: usize, align_to_words: bool) -> (usize, usize) {
    let offsets = window.get_offsets();
    let own = (offsets[first].0, offsets[last].1);
    if !align_to_words {
        return own;
    }
    let word_span = |token: usize| {
        let (_, word) = window.token_to_word(token)?;
        window.word_to_chars(word, 1)
    };
    match (word_span(first), word_span(last)) {
        (Some((from, _)), Some((_, to))) => (from, to),
        _ => own,
    }
}

/// Byte positions of each character boundary of `text` (one more than its characters).
fn char_boundaries(text: &str) -> Vec<usize> {
    text.char_indices().map(|(at, _)| at).chain([text.len()]).collect()
}

/// The characters `from..to` of `text`, clamped to it.
fn slice(text: &str, boundaries: &[usize], from: usize, to: usize) -> String {
    let last = boundaries.len() - 1;
    let (from, to) = (from.min(last), to.min(last));
    if from >= to {
        return String::new();
    }
    text[boundaries[from]..boundaries[to]].to_string()
}

/// What a generated question-answering crate says about its model.
#[derive(Debug, Clone, Copy)]
pub struct QuestionAnswererSpec {
    pub name: &'static str,
    pub signature: Signature,
    /// The outputs holding `[batch, tokens]` start and end logits.
    pub start_output: &'static str,
    pub end_output: &'static str,
    /// The tokenizer's max length: the default window (`max_seq_len`, at most 384).
    pub max_length: usize,
    /// The model's position embeddings: the longest window it can take.
    pub max_positions: usize,
}

/// A loaded extractive question-answering model: the tokenizer that cuts windows, the
/// session pool.
pub struct QuestionAnswerer {
    info: ModelInfo,
    spec: QuestionAnswererSpec,
    encoder: TextEncoder,
    questions: QuestionTokenizer,
    pool: SessionPool,
    max_batch_size: usize,
}

impl QuestionAnswerer {
    /// Loads the chosen variant of `dir`, refusing an artifact whose signature differs
    /// from `spec`.
    pub fn load(dir: &Path, spec: QuestionAnswererSpec, options: &LoadOptions) -> Result<Self> {
        let parts = TextModelParts::open(dir, &spec.signature, spec.max_length, options)?;
        let info = parts.info(spec.name, Task::QuestionAnswering, spec.max_length, spec.signature);
        let TextModelParts { pool, encoder, .. } = parts;
        let questions = QuestionTokenizer::new(encoder.tokenizer().clone())?;
        Ok(Self {
            info,
            spec,
            encoder,
            questions,
            pool,
            max_batch_size: options.max_batch_size.max(1),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The windows of `question` over `context` that `options` ask for.
    pub fn windows(&self, question: &str, context: &str, options: &AnswerOptions) -> Result<Vec<Encoding>> {
        let windowing = options.windowing(self.spec.max_length, self.spec.max_positions)?;
        self.questions
            .windows(question, context, windowing, options.max_question_len)
    }

    /// The answers to each (question, context) pair, best first, as the pipeline gives
    /// them with `options`.
    pub fn answer(&self, pairs: &[(&str, &str)], options: &AnswerOptions) -> Result<Vec<Vec<Answer>>> {
        let windows = pairs
            .iter()
            .map(|(question, context)| self.windows(question, context, options))
            .collect::<Result<Vec<_>>>()?;
        let flat: Vec<&Encoding> = windows.iter().flatten().collect();
        let mut logits = Vec::with_capacity(flat.len());
        for chunk in flat.chunks(self.max_batch_size) {
            logits.extend(self.span_logits_of(&self.encoder.pad(chunk), Lane::Any)?);
        }
        let mut logits = logits.into_iter();
        pairs
            .iter()
            .zip(&windows)
            .map(|((_, context), windows)| {
                let own: Vec<SpanLogits> = logits.by_ref().take(windows.len()).collect();
                self.answers_of(context, windows, &own, options)
            })
            .collect()
    }

    /// The answers to one question from its windows and their logits, as the engine ran
    /// them.
    pub fn answers_of(
        &self,
        context: &str,
        windows: &[Encoding],
        logits: &[SpanLogits],
        options: &AnswerOptions,
    ) -> Result<Vec<Answer>> {
        answers(context, windows, logits, self.questions.cls_id(), options)
    }

    /// Each row's start and end logits over its real tokens: one `session.run` on a
    /// session of `lane`.
    pub fn span_logits_of(&self, batch: &EncodedBatch, lane: Lane) -> Result<Vec<SpanLogits>> {
        self.pool.with_session(lane, |session| self.run(session, batch))
    }

    fn run(&self, session: &mut Session, batch: &EncodedBatch) -> Result<Vec<SpanLogits>> {
        let outputs = session.run(batch.session_inputs(&self.spec.signature)?)?;
        let (rows, columns) = batch.input_ids.dim();
        let of = |name: &str| logits_output(&outputs, name, rows, columns);
        let (start, end) = (of(self.spec.start_output)?, of(self.spec.end_output)?);
        Ok(batch
            .lengths
            .iter()
            .enumerate()
            .map(|(row, &length)| SpanLogits {
                start: start.row(row).iter().take(length).copied().collect(),
                end: end.row(row).iter().take(length).copied().collect(),
            })
            .collect())
    }
}

impl TaskModel for QuestionAnswerer {
    fn info(&self) -> &ModelInfo {
        QuestionAnswerer::info(self)
    }

    fn encoder(&self) -> Option<&TextEncoder> {
        Some(&self.encoder)
    }

    fn run_texts(&self, batch: &EncodedBatch, lane: Lane) -> Result<Vec<RowOutput>> {
        Ok(self
            .span_logits_of(batch, lane)?
            .into_iter()
            .map(RowOutput::SpanLogits)
            .collect())
    }

    fn windows(&self, question: &str, context: &str, options: &AnswerOptions) -> Result<Vec<Encoding>> {
        QuestionAnswerer::windows(self, question, context, options)
    }

    fn answers_of(
        &self,
        context: &str,
        windows: &[Encoding],
        logits: &[SpanLogits],
        options: &AnswerOptions,
    ) -> Result<Vec<Answer>> {
        QuestionAnswerer::answers_of(self, context, windows, logits, options)
    }

    fn process(&self, inputs: &[Input<'_>]) -> Result<()> {
        let pairs = inputs.iter().map(Input::question).collect::<Result<Vec<_>>>()?;
        self.answer(&pairs, &AnswerOptions::default()).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WordPiece tokenizer with BERT's pre-tokenizer and pair template, as MiniLM's has.
    fn tokenizer() -> QuestionTokenizer {
        let vocabulary = [
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "which",
            "version",
            "fixes",
            "the",
            "leak",
            "?",
            "postgresql",
            "16",
            ".",
            "2",
            "is",
            "out",
            "and",
            "it",
            "cafe",
            "café",
            "##s",
            "v",
            "##2",
            "zurich",
            "3",
        ];
        let vocab: Vec<String> = vocabulary
            .iter()
            .enumerate()
            .map(|(id, token)| format!("\"{token}\":{id}"))
            .collect();
        let json = format!(
            r###"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
            "normalizer":{{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}},
            "pre_tokenizer":{{"type":"BertPreTokenizer"}},
            "post_processor":{{"type":"BertProcessing","sep":["[SEP]",3],"cls":["[CLS]",2]}},
            "decoder":{{"type":"WordPiece","prefix":"##","cleanup":true}},
            "model":{{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##",
            "max_input_chars_per_word":100,"vocab":{{{}}}}}}}"###,
            vocab.join(",")
        );
        let tokenizer = match Tokenizer::from_bytes(json) {
            Ok(tokenizer) => tokenizer,
            Err(error) => panic!("test tokenizer: {error}"),
        };
        match QuestionTokenizer::new(tokenizer) {
            Ok(tokenizer) => tokenizer,
            Err(error) => panic!("question tokenizer: {error}"),
        }
    }

    fn windowing(max_seq_len: usize, doc_stride: usize) -> Windowing {
        Windowing {
            max_seq_len,
            doc_stride,
        }
    }

    /// Logits that put the start at token `first` and the end at `last` with `strength`.
    fn pointing(window: &Encoding, first: usize, last: usize, strength: f32) -> SpanLogits {
        let mut start = vec![0.0; window.len()];
        let mut end = vec![0.0; window.len()];
        start[first] = strength;
        end[last] = strength;
        SpanLogits { start, end }
    }

    fn tokens(window: &Encoding) -> Vec<&str> {
        window.get_tokens().iter().map(String::as_str).collect()
    }

    #[test]
    fn a_short_pair_is_one_window_with_question_first() {
        let tokenizer = tokenizer();
        let windows = tokenizer
            .windows(
                "Which version fixes the leak?",
                "PostgreSQL 16.2 fixes the leak.",
                windowing(64, 16),
                64,
            )
            .unwrap();
        assert_eq!(windows.len(), 1);
        assert_eq!(
            tokens(&windows[0]),
            [
                "[CLS]",
                "which",
                "version",
                "fixes",
                "the",
                "leak",
                "?",
                "[SEP]",
                "postgresql",
                "16",
                ".",
                "2",
                "fixes",
                "the",
                "leak",
                ".",
                "[SEP]"
            ]
        );
    }

    #[test]
    fn the_best_span_is_widened_to_words_and_quoted_in_characters() {
        let tokenizer = tokenizer();
        let context = "Café v2 fixes the leak.";
        let windows = tokenizer
            .windows("which version fixes the leak?", context, windowing(64, 16), 64)
            .unwrap();
        let shown = tokens(&windows[0]);
        let v = shown.iter().position(|t| *t == "v").unwrap();
        // The end points at "##2", inside the word "v2": aligned, the answer is the word.
        let logits = vec![pointing(&windows[0], v + 1, v + 1, 10.0)];
        let aligned = answers(
            context,
            &windows,
            &logits,
            tokenizer.cls_id(),
            &AnswerOptions::default(),
        )
        .unwrap();
        assert_eq!(
            (aligned[0].start, aligned[0].end, aligned[0].answer.as_str()),
            (5, 7, "v2")
        );
        let unaligned = AnswerOptions {
            align_to_words: false,
            ..AnswerOptions::default()
        };
        let raw = answers(context, &windows, &logits, tokenizer.cls_id(), &unaligned).unwrap();
        assert_eq!((raw[0].start, raw[0].end, raw[0].answer.as_str()), (6, 7, "2"));
        // Characters, not bytes: "é" is one character.
        // The normalizer lowercases and strips accents; offsets still point into the text.
        let cafe = shown.iter().position(|t| *t == "cafe").unwrap();
        let logits = vec![pointing(&windows[0], cafe, cafe, 10.0)];
        let first = answers(
            context,
            &windows,
            &logits,
            tokenizer.cls_id(),
            &AnswerOptions::default(),
        )
        .unwrap();
        assert_eq!((first[0].start, first[0].end, first[0].answer.as_str()), (0, 4, "Café"));
    }

    #[test]
    fn sums_are_added_in_numpys_pairwise_order() {
        // One then fifteen tiny values: a running sum never moves off 1.0 (each 1e-8 is
        // under half a unit in the last place), NumPy's eight lanes gather 8e-8 in the
        // second half of the tree first, which rounds 1.0 up by one unit
        // (`np.array([1] + [1e-8] * 15, dtype=np.float32).sum()`).
        let mut values = vec![1.0f32];
        values.extend([1e-8f32; 15]);
        assert_eq!(values.iter().fold(0.0f32, |sum, &value| sum + value), 1.0);
        assert_eq!(numpy_sum(&values), 1.0 + f32::EPSILON);
        // Short slices are a running sum; long ones split in halves of whole lanes.
        assert_eq!(numpy_sum(&[]), 0.0);
        assert_eq!(numpy_sum(&[0.5, 0.25, 0.125]), 0.875);
        let long: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        assert_eq!(numpy_sum(&long), 499_500.0);
    }

    #[test]
    fn scores_are_the_pipelines_products_of_softmaxes_over_the_answerable_tokens() {
        let tokenizer = tokenizer();
        let context = "postgresql 16.2 is out";
        let windows = tokenizer
            .windows("which version?", context, windowing(64, 16), 64)
            .unwrap();
        let window = &windows[0];
        // Tokens: [CLS] which version ? [SEP] postgresql 16 . 2 is out [SEP].
        let logits = pointing(window, 6, 8, 3.0);
        let found = answers(
            context,
            &windows,
            std::slice::from_ref(&logits),
            tokenizer.cls_id(),
            &AnswerOptions::default(),
        )
        .unwrap();
        // Answerable: [CLS] and the 6 context tokens; each softmax is e^3 / (e^3 + 6).
        let p = (3.0f32.exp() / (3.0f32.exp() + 6.0)) as f64;
        assert_eq!(found[0].answer, "16.2");
        assert!((found[0].score - p * p).abs() < 1e-6, "{found:?}");
        // The no-answer is [CLS]'s probabilities' product: (1 / (e^3 + 6))².
        let impossible = AnswerOptions {
            handle_impossible_answer: true,
            top_k: 50,
            ..AnswerOptions::default()
        };
        let with_null = answers(context, &windows, &[logits], tokenizer.cls_id(), &impossible).unwrap();
        let null = with_null.iter().find(|a| a.answer.is_empty()).unwrap();
        let q = (1.0 / (3.0f32.exp() + 6.0)) as f64;
        assert!((null.score - q * q).abs() < 1e-6, "{null:?}");
        assert_eq!((null.start, null.end), (0, 0));
        assert!(with_null.windows(2).all(|pair| pair[0].score >= pair[1].score));
    }

    #[test]
    fn a_long_context_is_cut_into_overlapping_windows_and_the_same_answer_adds_up() {
        let tokenizer = tokenizer();
        let context = "it is out and it is out and postgresql 16.2 is out and it is out";
        let windows = tokenizer
            .windows("which version?", context, windowing(16, 6), 64)
            .unwrap();
        assert!(windows.len() > 1, "{}", windows.len());
        for window in &windows {
            assert!(window.len() <= 16);
            assert_eq!(&tokens(window)[..4], ["[CLS]", "which", "version", "?"]);
        }
        // Point every window that holds "16.2" at it: one answer, its scores summed.
        let answer_in = |window: &Encoding| {
            let shown = tokens(window);
            let at = shown.iter().position(|t| *t == "16")?;
            (shown.get(at + 2) == Some(&"2")).then_some(at)
        };
        let logits: Vec<SpanLogits> = windows
            .iter()
            .map(|window| match answer_in(window) {
                Some(at) => pointing(window, at, at + 2, 8.0),
                None => pointing(window, 0, 0, 8.0),
            })
            .collect();
        let holding: Vec<usize> = (0..windows.len())
            .filter(|&i| answer_in(&windows[i]).is_some())
            .collect();
        assert!(holding.len() >= 2, "the stride repeats the answer in {holding:?}");
        let options = AnswerOptions {
            top_k: 3,
            ..AnswerOptions::default()
        };
        let found = answers(context, &windows, &logits, tokenizer.cls_id(), &options).unwrap();
        assert_eq!(found[0].answer, "16.2");
        assert_eq!(&context[found[0].start..found[0].end], "16.2");
        let one = holding[0];
        let alone = answers(
            context,
            &windows[one..=one],
            &logits[one..=one],
            tokenizer.cls_id(),
            &options,
        )
        .unwrap();
        assert_eq!(alone[0].answer, "16.2");
        // Each window's softmax sums its own tokens, so equal to the last f32 digits.
        assert!(
            (found[0].score - holding.len() as f64 * alone[0].score).abs() < 1e-6,
            "{found:?} {alone:?}"
        );
    }

    #[test]
    fn refusals_name_the_field() {
        let tokenizer = tokenizer();
        let error = |question: &str, context: &str, windowing: Windowing, max_question: usize| {
            tokenizer
                .windows(question, context, windowing, max_question)
                .unwrap_err()
                .to_string()
        };
        assert!(error(" ", "it is out", windowing(64, 16), 64).contains("`question` cannot be empty"));
        assert!(error("which?", "", windowing(64, 16), 64).contains("`context` cannot be empty"));
        assert!(error("which version fixes the leak?", "it", windowing(64, 16), 3).contains("`max_question_len` (3)"));
        let long = "it is out and it is out and it is out and it is out";
        assert!(error("which version fixes the leak?", long, windowing(9, 1), 64).contains("leaves no room"));
        assert!(error("which version?", long, windowing(12, 7), 64).contains("`doc_stride` (7) must be less than"));
        let options = AnswerOptions {
            max_seq_len: Some(600),
            ..AnswerOptions::default()
        };
        assert!(
            options
                .windowing(256, 512)
                .unwrap_err()
                .to_string()
                .contains("`max_seq_len` is 600")
        );
        let options = AnswerOptions {
            doc_stride: Some(300),
            ..AnswerOptions::default()
        };
        assert!(
            options
                .windowing(256, 512)
                .unwrap_err()
                .to_string()
                .contains("`doc_stride` (300)")
        );
        assert_eq!(
            AnswerOptions::default().windowing(256, 512).unwrap(),
            windowing(256, 128)
        );
        assert_eq!(
            AnswerOptions::default().windowing(512, 512).unwrap(),
            windowing(384, 128)
        );
    }
}
