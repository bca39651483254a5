//! Texts through the real tokenizers of the NER and QA models (`artifacts/<model>/onnx/
//! tokenizer.json`), with logits drawn at random in place of the model's: offsets are
//! character positions inside the text, entities are in-order spans of it, and an answer
//! is exactly its slice of the context. No model runs: what is tested is everything the
//! server does around one.

use std::path::PathBuf;
use std::sync::OnceLock;

use modelcrate_runtime::Error;
use modelcrate_runtime::question_answering::{self, AnswerOptions, QuestionTokenizer, SpanLogits};
use modelcrate_runtime::text::TextEncoder;
use modelcrate_runtime::token_classification::{self, AggregationStrategy, Vocabulary};
use ndarray::Array2;
use proptest::prelude::*;
use tokenizers::Tokenizer;

use crate::common::artifacts;
use crate::{config, hostile_text};

fn tokenizer_of(model: &str) -> PathBuf {
    artifacts().join(model).join("onnx").join("tokenizer.json")
}

/// release-ner's encoder, read once for every case.
fn ner_encoder() -> &'static TextEncoder {
    static ENCODER: OnceLock<TextEncoder> = OnceLock::new();
    ENCODER.get_or_init(|| {
        TextEncoder::from_file(&tokenizer_of("release-ner"), modelcrate_models::release_ner::MAX_LENGTH)
            .expect("release-ner's tokenizer.json (cargo xtask export)")
    })
}

/// release-qa's question tokenizer, read once for every case.
fn qa_tokenizer() -> &'static QuestionTokenizer {
    static QUESTIONS: OnceLock<QuestionTokenizer> = OnceLock::new();
    QUESTIONS.get_or_init(|| {
        let tokenizer =
            Tokenizer::from_file(tokenizer_of("release-qa")).expect("release-qa's tokenizer.json (cargo xtask export)");
        QuestionTokenizer::new(tokenizer).expect("a question tokenizer")
    })
}

/// Logits in the range a fine-tuned head gives, enough for any window of the models.
fn logits(count: usize) -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-12.0f32..12.0, count)
}

/// The characters of `text` from `start` to `end`, as Python slices a `str`.
fn slice(text: &str, start: usize, end: usize) -> String {
    text.chars().skip(start).take(end.saturating_sub(start)).collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn offsets_are_character_positions_inside_the_text(text in hostile_text()) {
        let encoder = ner_encoder();
        let characters = text.chars().count();
        let encodings = encoder.char_encodings(&[text.as_str()]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let encoding = &encodings[0];
        prop_assert!(encoding.len() <= modelcrate_models::release_ner::MAX_LENGTH);
        let mut last_start = 0;
        for (index, (&(start, end), &special)) in encoding.get_offsets().iter().zip(encoding.get_special_tokens_mask()).enumerate() {
            if special == 1 {
                continue;
            }
            prop_assert!(start <= end && end <= characters, "token {index} at {start}..{end} of {characters} characters");
            prop_assert!(start >= last_start, "token {index} starts at {start}, before the previous token's {last_start}");
            last_start = start;
        }
    }

    #[test]
    fn entities_are_in_order_spans_of_the_text_under_every_strategy(
        text in hostile_text(),
        scores in logits(modelcrate_models::release_ner::MAX_LENGTH * 5),
    ) {
        let labels = &modelcrate_models::release_ner::Label::NAMES;
        let encoder = ner_encoder();
        let vocabulary = Vocabulary::new(encoder.tokenizer());
        let encodings = encoder.char_encodings(&[text.as_str()]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let encoding = &encodings[0];
        let rows = encoding.len();
        let logits = Array2::from_shape_vec((rows, labels.len()), scores[..rows * labels.len()].to_vec())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let characters = text.chars().count();
        for strategy in AggregationStrategy::ALL {
            let entities = token_classification::entities(&text, encoding, &logits, labels, strategy, &[], &vocabulary)
                .map_err(|e| TestCaseError::fail(format!("{strategy:?}: {e}")))?;
            let (mut previous_start, mut previous_end) = (0, 0);
            for entity in &entities {
                prop_assert!(
                    entity.start < entity.end && entity.end <= characters,
                    "{strategy:?}: {entity:?} in {characters} characters"
                );
                prop_assert!(entity.score.is_finite() && (0.0..=1.0).contains(&entity.score), "{strategy:?}: {entity:?}");
                prop_assert!(labels.contains(&entity.label) || labels.iter().any(|l| l.ends_with(&format!("-{}", entity.label))), "{strategy:?}: {entity:?}");
                // In order; two entities share at most one character: the tokenizer's
                // normalization can split one character into several tokens (NFD cuts a
                // Hangul syllable into its jamo), each with that character's offsets, and
                // the pipeline labels each token on its own.
                prop_assert!(entity.start >= previous_start, "{strategy:?}: {entity:?} starts before the entity before it");
                if strategy != AggregationStrategy::None {
                    prop_assert!(
                        entity.start + 1 >= previous_end,
                        "{strategy:?}: {entity:?} overlaps the entity before it (ended at {previous_end}) by more than a character"
                    );
                }
                (previous_start, previous_end) = (entity.start, entity.end);
            }
        }
    }

    #[test]
    fn an_answer_is_exactly_its_slice_of_the_context(
        question in hostile_text(),
        context in hostile_text(),
        max_seq_len in 24usize..160,
        stride_share in 0.0f64..0.9,
        top_k in 1usize..5,
        handle_impossible_answer in any::<bool>(),
        align_to_words in any::<bool>(),
        scores in logits(2 * 160 * 32),
    ) {
        let questions = qa_tokenizer();
        let options = AnswerOptions {
            top_k,
            doc_stride: Some((max_seq_len as f64 * stride_share) as usize),
            max_seq_len: Some(max_seq_len),
            handle_impossible_answer,
            align_to_words,
            ..AnswerOptions::default()
        };
        let windowing = options.windowing(modelcrate_models::release_qa::MAX_LENGTH, 512)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let windows = match questions.windows(&question, &context, windowing, options.max_question_len) {
            Ok(windows) => windows,
            // A refusal names what the client sent wrong.
            Err(Error::Input(message)) => {
                prop_assert!(
                    ["`question`", "`context`", "`doc_stride`"].iter().any(|field| message.contains(field)),
                    "{message}"
                );
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        };
        prop_assume!(windows.len() <= 32);
        let mut drawn = scores.chunks(160);
        let logits: Vec<SpanLogits> = windows
            .iter()
            .map(|window| {
                let start = drawn.next().unwrap_or_default();
                let end = drawn.next().unwrap_or_default();
                SpanLogits { start: start[..window.len()].to_vec(), end: end[..window.len()].to_vec() }
            })
            .collect();
        let answers = question_answering::answers(&context, &windows, &logits, questions.cls_id(), &options)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!answers.is_empty() && answers.len() <= top_k + usize::from(handle_impossible_answer));
        let characters = context.chars().count();
        for answer in &answers {
            // A probability, or the pipeline's sum of them where windows (or spans) give the
            // same text: at most one per window.
            prop_assert!(
                answer.score.is_finite() && answer.score >= 0.0 && answer.score <= windows.len() as f64 + 1e-6,
                "{answer:?} over {} windows",
                windows.len()
            );
            prop_assert!(answer.start <= answer.end && answer.end <= characters, "{answer:?} in {characters} characters");
            prop_assert_eq!(&answer.answer, &slice(&context, answer.start, answer.end));
            // An empty answer is the no-answer when it is asked for, or one of the zero
            // scores the pipeline fills `top_k` with when too few spans score above 0.
            if answer.answer.is_empty() {
                prop_assert!(
                    (handle_impossible_answer && (answer.start, answer.end) == (0, 0)) || answer.score == 0.0,
                    "{answer:?}"
                );
            }
        }
    }
}

#[test]
fn a_blank_question_or_context_is_refused_by_name() {
    let questions = qa_tokenizer();
    let windowing = AnswerOptions::default()
        .windowing(256, 512)
        .expect("the default windowing");
    let refusal = |question: &str, context: &str| match questions.windows(question, context, windowing, 64) {
        Err(Error::Input(message)) => message,
        other => panic!("{question:?} over {context:?}: {other:?}"),
    };
    assert!(refusal(" \u{3000}", "text").contains("`question`"));
    assert!(refusal("what?", "\n\t").contains("`context`"));
}
