//! The Hugging Face Inference API's JSON requests, as serde types (their OpenAPI schemas
//! derive from the same declarations): `{"inputs": str | [str], "parameters": {…}}` with
//! the parameters of the model's task. Text classification: `top_k` (a count, or `null`
//! for every label) and `function_to_apply`; feature extraction: `normalize`; token
//! classification: `aggregation_strategy` and `ignore_labels`; an image classifier's
//! JSON body carries base64 images in `inputs` with the classification parameters, an
//! object detector's with `threshold` and `iou_threshold`, a zero-shot image classifier's
//! with `candidate_labels` and `hypothesis_template`;
//! question answering: `inputs` is `{"question", "context"}` (or a list of them), with
//! the question-answering pipeline's parameters.
//! A field outside these is refused by name.

use std::fmt;

use modelcrate_core::TopK;
use modelcrate_runtime::detection::{DEFAULT_DECODE, DecodeOptions};
use modelcrate_runtime::image_text::DEFAULT_HYPOTHESIS_TEMPLATE;
use modelcrate_runtime::{AggregationStrategy, AnswerOptions, ClassificationFunction};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;
use crate::wire::{self, Count, Function, Inputs, Strategy, Text, TopKParam, Whole};

/// A text-classification request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    pub inputs: Inputs,
    #[serde(default, deserialize_with = "wire::object")]
    pub parameters: Option<ClassifyParameters>,
}

/// The classification pipelines' parameters (text and image).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyParameters {
    /// Labels per answer, best first; `null` for every label. Absent: the pipeline's
    /// default (text: the best label alone; image: five).
    #[serde(default)]
    pub top_k: TopKParam,
    pub function_to_apply: Option<Function>,
}

impl ClassifyParameters {
    pub fn top_k(&self) -> TopK {
        self.top_k.0
    }

    pub fn function(&self) -> Option<ClassificationFunction> {
        self.function_to_apply.map(|function| function.0)
    }
}

impl ClassifyRequest {
    pub fn parameters(&self) -> ClassifyParameters {
        self.parameters.clone().unwrap_or_default()
    }
}

/// A feature-extraction request: texts, and whether to L2-normalise (the model's own
/// choice when absent).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    pub inputs: Inputs,
    #[serde(default, deserialize_with = "wire::object")]
    pub parameters: Option<EmbedParameters>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedParameters {
    /// L2-normalise each vector; the model's own `Normalize` module decides when absent.
    pub normalize: Option<bool>,
}

impl EmbedRequest {
    pub fn normalize(&self) -> Option<bool> {
        self.parameters.as_ref().and_then(|parameters| parameters.normalize)
    }
}

/// A token-classification request. The strategy defaults to `simple`, as the Inference
/// API's does (the Python pipeline's own default is `none`); `ignore_labels` to `["O"]`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitiesRequest {
    pub inputs: Inputs,
    #[serde(default, deserialize_with = "wire::object")]
    pub parameters: Option<EntitiesParameters>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntitiesParameters {
    pub aggregation_strategy: Option<Strategy>,
    /// Labels left out of the answer; `["O"]` when absent.
    pub ignore_labels: Option<Vec<String>>,
    pub stride: Option<Stride>,
}

impl EntitiesRequest {
    pub fn strategy(&self) -> AggregationStrategy {
        self.parameters
            .as_ref()
            .and_then(|parameters| parameters.aggregation_strategy)
            .map_or(AggregationStrategy::Simple, |strategy| strategy.0)
    }

    pub fn ignore_labels(&self) -> Option<Vec<String>> {
        self.parameters
            .as_ref()
            .and_then(|parameters| parameters.ignore_labels.clone())
    }
}

/// The pipeline's `stride`, which only `null` passes: texts are cut at the model's max
/// length, not split into overlapping windows.
#[derive(Debug, Clone, Copy)]
pub struct Stride;

impl<'de> Deserialize<'de> for Stride {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        de::IgnoredAny::deserialize(deserializer)?;
        Err(de::Error::custom(
            "is not supported: texts are truncated at the model's max length, not split into overlapping windows",
        ))
    }
}

impl PartialSchema for Stride {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Null)
            .description(Some("not supported: texts are cut at the model's max length"))
            .into()
    }
}

impl ToSchema for Stride {}

/// A question-answering request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerRequest {
    pub inputs: QuestionInputs,
    #[serde(default, deserialize_with = "wire::object")]
    pub parameters: Option<AnswerParameters>,
}

/// One question about a context.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestionContext {
    pub question: Text,
    /// The passage the answer is a span of.
    pub context: Text,
}

/// `inputs`: one question, or a non-empty list of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuestionInputs {
    One(QuestionContext),
    Many(Vec<QuestionContext>),
}

impl QuestionInputs {
    /// (question, context) pairs, owned (what the inference core takes).
    pub fn into_pairs(self) -> Vec<(String, String)> {
        let all = match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        };
        all.into_iter().map(|q| (q.question.0, q.context.0)).collect()
    }

    /// How many questions were sent.
    pub fn count(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(many) => many.len(),
        }
    }
}

impl<'de> Deserialize<'de> for QuestionInputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuestionsVisitor;

        impl<'de> Visitor<'de> for QuestionsVisitor {
            type Value = QuestionInputs;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object {\"question\", \"context\"} or an array of them")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<QuestionInputs, A::Error> {
                QuestionContext::deserialize(de::value::MapAccessDeserializer::new(map)).map(QuestionInputs::One)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<QuestionInputs, A::Error> {
                let mut all = Vec::with_capacity(items.size_hint().unwrap_or(0).min(1024));
                while let Some(wire::Object(item)) = items.next_element::<wire::Object<QuestionContext>>()? {
                    all.push(item);
                }
                if all.is_empty() {
                    return Err(de::Error::custom("is an empty array; send at least one question"));
                }
                Ok(QuestionInputs::Many(all))
            }
        }

        deserializer.deserialize_any(QuestionsVisitor)
    }
}

impl PartialSchema for QuestionInputs {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(QuestionContext::schema())
            .item(ArrayBuilder::new().items(QuestionContext::schema()).min_items(Some(1)))
            .description(Some(
                "one question about a context, or a list of them (answered one per question; a list of one is answered as one question is, as the pipeline does)",
            ))
            .into()
    }
}

impl ToSchema for QuestionInputs {}

/// The question-answering pipeline's parameters, with its defaults when absent.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerParameters {
    /// How many answers, best first (default 1; fewer when the context has fewer).
    pub top_k: Option<Count>,
    /// Tokens two consecutive windows of a long context share (default: half the
    /// window, at most 128).
    pub doc_stride: Option<Whole>,
    /// Longest answer, in tokens (default 15).
    pub max_answer_len: Option<Count>,
    /// Tokens of a window, question and special tokens included (default: the model's
    /// max length, at most 384).
    pub max_seq_len: Option<Count>,
    /// Longest question, in tokens (default 64); a longer one is refused.
    pub max_question_len: Option<Count>,
    /// Whether "no answer" (`""` at 0) may be an answer (default false).
    pub handle_impossible_answer: Option<bool>,
    /// Whether answers are widened to whole words (default true).
    pub align_to_words: Option<bool>,
}

impl AnswerRequest {
    /// The parameters over the pipeline's defaults.
    pub fn options(&self) -> AnswerOptions {
        let asked = self.parameters.clone().unwrap_or_default();
        let defaults = AnswerOptions::default();
        AnswerOptions {
            top_k: asked.top_k.map_or(defaults.top_k, |Count(k)| k),
            doc_stride: asked.doc_stride.map(|Whole(stride)| stride),
            max_answer_len: asked.max_answer_len.map_or(defaults.max_answer_len, |Count(n)| n),
            max_seq_len: asked.max_seq_len.map(|Count(n)| n),
            max_question_len: asked.max_question_len.map_or(defaults.max_question_len, |Count(n)| n),
            handle_impossible_answer: asked
                .handle_impossible_answer
                .unwrap_or(defaults.handle_impossible_answer),
            align_to_words: asked.align_to_words.unwrap_or(defaults.align_to_words),
        }
    }
}

/// An image classifier's JSON request: base64 images (a `data:` URL prefix allowed).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImagesRequest {
    /// A base64-encoded PNG or JPEG, or a list of them.
    pub inputs: Inputs,
    #[serde(default, deserialize_with = "wire::object")]
    pub parameters: Option<ClassifyParameters>,
}

/// An object detector's JSON request: base64 images (a `data:` URL prefix allowed).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectionRequest {
    /// A base64-encoded PNG or JPEG, or a list of them.
    pub inputs: Inputs,
    #[serde(default, deserialize_with = "wire::object")]
    pub parameters: Option<DetectionParameters>,
}

/// The object-detection pipeline's parameter, `threshold`, and the NMS overlap.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DetectionParameters {
    /// Objects scoring below this are left out (0 to 1; the pipeline's default, 0.5).
    pub threshold: Option<f64>,
    /// A box overlapping a better one of its label by more than this IoU is dropped
    /// (0 to 1; 0.5 by default). Not one of the pipeline's parameters: its post-processing
    /// is the model's own, and this model's is class-wise NMS.
    pub iou_threshold: Option<f64>,
}

impl DetectionParameters {
    /// The decoding the parameters ask for, the defaults filling what they leave out; a
    /// value outside 0 to 1 is refused by its field.
    pub fn options(&self) -> Result<DecodeOptions, ApiError> {
        let within = |value: Option<f64>, default: f64, field: &str| match value {
            None => Ok(default),
            Some(value) if (0.0..=1.0).contains(&value) => Ok(value),
            Some(value) => Err(ApiError::Validation(format!(
                "`parameters.{field}` must be from 0 to 1, not {value}"
            ))),
        };
        Ok(DecodeOptions {
            threshold: within(self.threshold, DEFAULT_DECODE.threshold, "threshold")?,
            iou_threshold: within(self.iou_threshold, DEFAULT_DECODE.iou_threshold, "iou_threshold")?,
        })
    }
}

/// A zero-shot image classifier's JSON request: base64 images (a `data:` URL prefix
/// allowed) and the labels to score them against.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotRequest {
    /// A base64-encoded PNG or JPEG, or a list of them.
    pub inputs: Inputs,
    #[serde(default, deserialize_with = "wire::object")]
    pub parameters: Option<ZeroShotParameters>,
}

/// An image–text model's image embeddings request as JSON: base64 images (a `data:` URL
/// prefix allowed), no parameters.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageEmbedRequest {
    /// A base64-encoded PNG or JPEG, or a list of them.
    pub inputs: Inputs,
}

/// The image embeddings route takes no parameters; any is refused by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParameters {}

/// Most candidate labels one request may score an image against: each is a text the
/// text tower embeds.
pub const MAX_CANDIDATE_LABELS: usize = 1000;

/// The zero-shot-image-classification pipeline's parameters.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZeroShotParameters {
    /// The labels to score each image against (required): a list, or one string of
    /// comma-separated labels (as a query string or a form field holds them).
    pub candidate_labels: Option<CandidateLabels>,
    /// Each label is put in its `{}` to make the text the image is compared with
    /// (default `"This is a photo of {}."`, the pipeline's).
    pub hypothesis_template: Option<String>,
}

/// Candidate labels as the zero-shot pipelines take them.
#[derive(Debug, Clone)]
pub enum CandidateLabels {
    List(Vec<String>),
    Joined(String),
}

impl<'de> Deserialize<'de> for CandidateLabels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = CandidateLabels;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a list of labels, or one string of comma-separated labels")
            }

            fn visit_str<E: de::Error>(self, joined: &str) -> Result<CandidateLabels, E> {
                Ok(CandidateLabels::Joined(joined.to_string()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<CandidateLabels, A::Error> {
                let mut labels = Vec::with_capacity(items.size_hint().unwrap_or(0).min(MAX_CANDIDATE_LABELS));
                while let Some(label) = items.next_element::<String>()? {
                    labels.push(label);
                }
                Ok(CandidateLabels::List(labels))
            }
        }

        deserializer.deserialize_any(LabelsVisitor)
    }
}

impl PartialSchema for CandidateLabels {
    fn schema() -> RefOr<Schema> {
        let label = ObjectBuilder::new().schema_type(Type::String).pattern(Some(r"\S"));
        OneOfBuilder::new()
            .item(
                ArrayBuilder::new()
                    .items(label)
                    .min_items(Some(1))
                    .max_items(Some(MAX_CANDIDATE_LABELS)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("[^,\\s]"))
                    .description(Some("labels separated by commas")),
            )
            .into()
    }
}

impl ToSchema for CandidateLabels {}

impl ZeroShotParameters {
    /// The candidate labels, each trimmed (a joined string split at its commas, empty
    /// pieces dropped, as the pipelines split it); refused by name when absent, empty,
    /// blank or more than [`MAX_CANDIDATE_LABELS`].
    pub fn labels(&self) -> Result<Vec<String>, ApiError> {
        let labels: Vec<String> = match &self.candidate_labels {
            None => {
                return Err(ApiError::Validation(
                    "`parameters.candidate_labels` is required: the labels to score the image against".into(),
                ));
            }
            Some(CandidateLabels::Joined(joined)) => joined
                .split(',')
                .map(str::trim)
                .filter(|label| !label.is_empty())
                .map(String::from)
                .collect(),
            Some(CandidateLabels::List(list)) => {
                if let Some(index) = list.iter().position(|label| label.trim().is_empty()) {
                    return Err(ApiError::Validation(format!(
                        "`parameters.candidate_labels[{index}]` is blank"
                    )));
                }
                list.clone()
            }
        };
        if labels.is_empty() {
            return Err(ApiError::Validation(
                "`parameters.candidate_labels` holds no label".into(),
            ));
        }
        if labels.len() > MAX_CANDIDATE_LABELS {
            return Err(ApiError::PayloadTooLarge(format!(
                "`parameters.candidate_labels` holds {} labels, more than {MAX_CANDIDATE_LABELS}",
                labels.len()
            )));
        }
        Ok(labels)
    }

    /// The hypothesis template: the request's, or the pipeline's default.
    pub fn template(&self) -> &str {
        self.hypothesis_template
            .as_deref()
            .unwrap_or(DEFAULT_HYPOTHESIS_TEMPLATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse;

    fn classify(body: &str) -> Result<ClassifyRequest, ApiError> {
        parse(body.as_bytes())
    }

    fn message<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        match parse::<T>(body.as_bytes()) {
            Ok(request) => panic!("{body} parsed: {request:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn one_text_and_a_list_parse_with_their_shape() {
        let one = classify(r#"{"inputs": "hi"}"#).map(|r| r.inputs);
        assert_eq!(one.ok(), Some(Inputs::One("hi".into())));
        let many = classify(r#"{"inputs": ["a", "b"]}"#).map(|r| r.inputs);
        assert_eq!(many.ok(), Some(Inputs::Many(vec!["a".into(), "b".into()])));
    }

    #[test]
    fn top_k_absent_null_and_number_are_distinct_and_the_function_case_insensitive() {
        let parameters = |body: &str| classify(body).map(|r| r.parameters());
        assert_eq!(
            parameters(r#"{"inputs": "a"}"#).map(|p| p.top_k()).ok(),
            Some(TopK::Absent)
        );
        let all = parameters(r#"{"inputs": "a", "parameters": {"top_k": null}}"#).map(|p| p.top_k());
        assert_eq!(all.ok(), Some(TopK::All));
        let two = parameters(r#"{"inputs": "a", "parameters": {"top_k": 2}}"#).map(|p| p.top_k());
        assert_eq!(two.ok(), Some(TopK::K(2)));
        let sigmoid = parameters(r#"{"inputs": "a", "parameters": {"function_to_apply": "Sigmoid"}}"#);
        assert_eq!(
            sigmoid.ok().and_then(|p| p.function()),
            Some(ClassificationFunction::Sigmoid)
        );
    }

    #[test]
    fn every_refusal_names_the_field() {
        let message = message::<ClassifyRequest>;
        assert!(message("{").starts_with("malformed JSON"));
        assert!(message("[1]").contains("must be a JSON object"));
        assert!(message("{}").contains("missing field `inputs`"));
        assert!(message(r#"{"inputs": 3}"#).contains("`inputs` must be a string or an array of strings, got a number"));
        assert!(message(r#"{"inputs": "  \n"}"#).contains("`inputs` is empty or only whitespace"));
        assert!(message(r#"{"inputs": []}"#).contains("empty array"));
        assert!(message(r#"{"inputs": ["a", 2]}"#).contains("`inputs[1]` must be a string"));
        assert!(message(r#"{"inputs": ["a", ""]}"#).contains("`inputs[1]` is empty"));
        assert!(message(r#"{"inputs": "a", "topk": 1}"#).contains("unknown field `topk`"));
        assert!(message(r#"{"inputs": "a", "parameters": {"k": 1}}"#).contains("unknown field `parameters.k`"));
        assert!(message(r#"{"inputs": "a", "parameters": {"top_k": 0}}"#).contains("`parameters.top_k`"));
        assert!(message(r#"{"inputs": "a", "parameters": {"top_k": 1.5}}"#).contains("`parameters.top_k`"));
        assert!(
            message(r#"{"inputs": "a", "parameters": {"function_to_apply": "relu"}}"#)
                .contains("`parameters.function_to_apply` must be \"softmax\", \"sigmoid\" or \"none\", got \"relu\"")
        );
        assert!(message(r#"{"inputs": "a", "parameters": 3}"#).contains("`parameters` must be a JSON object"));
    }

    #[test]
    fn too_many_inputs_is_payload_too_large() {
        let inputs = classify(r#"{"inputs": ["a","b","c","d","e"]}"#).map(|r| r.inputs);
        let error = inputs.and_then(|inputs| inputs.at_most(4, "inputs", "text"));
        assert!(
            matches!(error, Err(ApiError::PayloadTooLarge(ref m)) if m.contains("at most 4")),
            "{error:?}"
        );
    }

    #[test]
    fn an_embedding_request_takes_normalize_and_refuses_classification_parameters() {
        let embed = |body: &str| parse::<EmbedRequest>(body.as_bytes());
        let request = embed(r#"{"inputs": ["a"], "parameters": {"normalize": false}}"#);
        assert_eq!(request.ok().and_then(|r| r.normalize()), Some(false));
        assert_eq!(embed(r#"{"inputs": "a"}"#).ok().map(|r| r.normalize()), Some(None));
        let message = message::<EmbedRequest>;
        assert!(message(r#"{"inputs": "a", "parameters": {"top_k": 1}}"#).contains("unknown field `parameters.top_k`"));
        assert!(
            message(r#"{"inputs": "a", "parameters": {"normalize": "yes"}}"#)
                .contains("`parameters.normalize` must be true or false, got a string")
        );
    }

    #[test]
    fn a_question_request_takes_one_or_a_list_and_the_pipelines_parameters() {
        let answer = |body: &str| parse::<AnswerRequest>(body.as_bytes());
        let one = answer(r#"{"inputs": {"question": "Which?", "context": "PostgreSQL 16.2 is out"}}"#);
        let one = one.map(|r| {
            (
                r.options(),
                r.inputs.count(),
                matches!(r.inputs, QuestionInputs::One(_)),
            )
        });
        assert_eq!(one.ok(), Some((AnswerOptions::default(), 1, true)));
        let body = r#"{"inputs": [{"question": "a?", "context": "b c"}], "parameters": {"top_k": 3, "doc_stride": 32,
            "max_answer_len": 4, "max_seq_len": 128, "max_question_len": 20, "handle_impossible_answer": true,
            "align_to_words": false}}"#;
        let options = answer(body).map(|r| r.options());
        assert_eq!(
            options.ok(),
            Some(AnswerOptions {
                top_k: 3,
                doc_stride: Some(32),
                max_answer_len: 4,
                max_seq_len: Some(128),
                max_question_len: 20,
                handle_impossible_answer: true,
                align_to_words: false,
            })
        );
        let message = message::<AnswerRequest>;
        assert!(message(r#"{"inputs": {"context": "b"}}"#).contains("missing field `inputs.question`"));
        assert!(message(r#"{"inputs": {"question": "a?", "context": " "}}"#).contains("`inputs.context` is empty"));
        assert!(
            message(r#"{"inputs": [{"question": "a?", "context": "b"}, {"question": "", "context": "b"}]}"#)
                .contains("`inputs[1].question` is empty")
        );
        assert!(message(r#"{"inputs": "a question?"}"#).contains("`inputs` must be an object"));
        assert!(message(r#"{"inputs": []}"#).contains("empty array"));
        assert!(
            message(r#"{"inputs": {"question": "a?", "context": "b", "answer": "c"}}"#)
                .contains("unknown field `inputs.answer`")
        );
        let bad = |parameters: &str| {
            message(&format!(
                r#"{{"inputs": {{"question": "a?", "context": "b"}}, "parameters": {parameters}}}"#
            ))
        };
        assert!(bad(r#"{"top_k": 0}"#).contains("`parameters.top_k`"));
        assert!(bad(r#"{"max_answer_len": -1}"#).contains("`parameters.max_answer_len`"));
        assert!(bad(r#"{"doc_stride": "64"}"#).contains("`parameters.doc_stride`"));
        assert!(
            bad(r#"{"aggregation_strategy": "simple"}"#).contains("unknown field `parameters.aggregation_strategy`")
        );
    }

    #[test]
    fn an_entities_request_defaults_to_simple_and_names_bad_parameters() {
        let entities = |body: &str| parse::<EntitiesRequest>(body.as_bytes());
        let request = entities(r#"{"inputs": "a"}"#).map(|r| (r.strategy(), r.ignore_labels()));
        assert_eq!(request.ok(), Some((AggregationStrategy::Simple, None)));
        let body =
            r#"{"inputs": "a", "parameters": {"aggregation_strategy": "MAX", "ignore_labels": [], "stride": null}}"#;
        let request = entities(body).map(|r| (r.strategy(), r.ignore_labels()));
        assert_eq!(request.ok(), Some((AggregationStrategy::Max, Some(vec![]))));
        let message = message::<EntitiesRequest>;
        assert!(
            message(r#"{"inputs": "a", "parameters": {"aggregation_strategy": "longest"}}"#)
                .contains("`parameters.aggregation_strategy` must be")
        );
        assert!(
            message(r#"{"inputs": "a", "parameters": {"ignore_labels": "O"}}"#)
                .contains("`parameters.ignore_labels` must be an array")
        );
        assert!(
            message(r#"{"inputs": "a", "parameters": {"ignore_labels": ["O", 1]}}"#)
                .contains("`parameters.ignore_labels[1]`")
        );
        assert!(
            message(r#"{"inputs": "a", "parameters": {"stride": 16}}"#)
                .contains("`parameters.stride` is not supported")
        );
        assert!(message(r#"{"inputs": "a", "parameters": {"top_k": 1}}"#).contains("unknown field `parameters.top_k`"));
    }
}
