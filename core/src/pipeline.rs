//! The exact JSON the `transformers` pipelines return, built from scores or entities: the
//! answer shapes of the pipelines' tasks. The Inference API and TEI routes answer with
//! it, and parity compares it with the pipeline's own.
//!
//! Text classification:
//! - no `top_k`: the best label per text, `{label, score}`; one text → `[{…}]`, a list → `[{…}, …]`
//! - `top_k` given (k or null for all): labels by descending score; one text → `[{…}, …]`,
//!   a list → `[[{…}, …], …]`
//!
//! Token classification: one text → `[{entity, score, index, word, start, end}, …]` for
//! strategy `none`, `[{entity_group, score, word, start, end}, …]` otherwise; a list of
//! texts → one such list per text.
//!
//! Question answering: `{score, start, end, answer}` when one answer is left (whatever
//! `top_k`), a list of them best first when more are; several questions → one such
//! answer per question, except that a list of one question is answered as that one
//! question is (the pipeline unwraps it).
//!
//! Object detection: one image → `[{score, label, box: {xmin, ymin, xmax, ymax}}, …]` best
//! first, the box in whole pixels (each corner's `int()`, as the pipeline writes it); a
//! list of images → one such list per image.
//!
//! Zero-shot image classification: one image → `[{score, label}, …]`, every candidate
//! label best first (ties in the request's order, as Python's stable sort keeps them); a
//! list of images → one such list per image.

use modelcrate_runtime::classification::{best, ranked};
use modelcrate_runtime::detection::RawDetection;
use modelcrate_runtime::{Answer, Entity};
use serde::Serialize;
use serde_json::Value;

/// The pipeline's `top_k`: absent (one best label, legacy shape), `null` (all), or k.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopK {
    Absent,
    All,
    K(usize),
}

/// A label and its score: one entry of a classifier's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LabelScore {
    pub label: &'static str,
    /// The float32 score widened to a double, as Python's `score.item()` does.
    pub score: f64,
}

/// One text's labels: the best alone (no `top_k`), or the labels best first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TextLabels {
    Best(LabelScore),
    Ranked(Vec<LabelScore>),
}

/// A classifier's answer: one text's labels best first (one text sent alone, with
/// `top_k`), or an entry per text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Classification {
    Ranked(Vec<LabelScore>),
    PerText(Vec<TextLabels>),
}

/// As a schema, an array of [`TextLabels`]: a ranked list is also one (of best labels),
/// and the two variants' schemas side by side would not be `oneOf`, which wants exactly
/// one to match.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Classification {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name("TextLabels"))
            .description(Some(
                "one text's labels best first (one text sent alone, with top_k), or an entry per text",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Classification {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push(("TextLabels".into(), TextLabels::schema()));
        <TextLabels as utoipa::ToSchema>::schemas(schemas);
    }
}

/// A token's label (aggregation `none`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenEntity {
    /// The BIO label (`B-PRODUCT`).
    pub entity: &'static str,
    pub score: f64,
    /// Its position in the model input (`[CLS]` is 0).
    pub index: usize,
    pub word: String,
    /// Character offsets into the text (not bytes).
    pub start: usize,
    pub end: usize,
}

/// An entity of aggregation `simple`, `first`, `average` or `max`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EntityGroup {
    /// The entity type (`PRODUCT`).
    pub entity_group: &'static str,
    /// The mean of its tokens' (or words') scores.
    pub score: f64,
    /// Its words as the tokenizer decodes them.
    pub word: String,
    /// Character offsets into the text (not bytes).
    pub start: usize,
    pub end: usize,
}

/// One entity as the token-classification pipeline writes it, by strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EntityAnswer {
    Token(TokenEntity),
    Group(EntityGroup),
}

/// A token classifier's answer: one text's entities, or a list per text.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Entities {
    One(Vec<EntityAnswer>),
    PerText(Vec<Vec<EntityAnswer>>),
}

fn entry(labels: &[&'static str], id: usize, score: f32) -> LabelScore {
    LabelScore {
        label: labels.get(id).copied().unwrap_or("?"),
        score: f64::from(score),
    }
}

/// One text's answer.
pub fn one(labels: &[&'static str], scores: &[f32], top_k: TopK) -> TextLabels {
    match top_k {
        TopK::Absent => {
            let top = best(scores);
            TextLabels::Best(entry(labels, top.id, top.score))
        }
        TopK::All | TopK::K(_) => {
            let k = if let TopK::K(k) = top_k { Some(k) } else { None };
            TextLabels::Ranked(ranked(scores, k).iter().map(|s| entry(labels, s.id, s.score)).collect())
        }
    }
}

/// The whole answer; `single` when `inputs` was one string rather than a list.
pub fn classification(labels: &[&'static str], scores: &[Vec<f32>], top_k: TopK, single: bool) -> Classification {
    let mut answers: Vec<TextLabels> = scores.iter().map(|row| one(labels, row, top_k)).collect();
    // One text with `top_k` gets its ranked list as is; otherwise a list, one entry per text.
    if single
        && answers.len() == 1
        && let TextLabels::Ranked(ranked) = &mut answers[0]
    {
        return Classification::Ranked(std::mem::take(ranked));
    }
    Classification::PerText(answers)
}

/// [`classification`] as JSON, as parity compares it with the pipeline's own.
pub fn answer(labels: &[&'static str], scores: &[Vec<f32>], top_k: TopK, single: bool) -> Value {
    serde_json::to_value(classification(labels, scores, top_k, single)).unwrap_or(Value::Null)
}

/// One entity as the token-classification pipeline writes it.
fn entity(entity: &Entity) -> EntityAnswer {
    let score = f64::from(entity.score);
    match entity.index {
        Some(index) => EntityAnswer::Token(TokenEntity {
            entity: entity.label,
            score,
            index,
            word: entity.word.clone(),
            start: entity.start,
            end: entity.end,
        }),
        None => EntityAnswer::Group(EntityGroup {
            entity_group: entity.label,
            score,
            word: entity.word.clone(),
            start: entity.start,
            end: entity.end,
        }),
    }
}

/// A token-classification answer; `single` when `inputs` was one string.
pub fn entity_lists(found: &[Vec<Entity>], single: bool) -> Entities {
    let mut answers: Vec<Vec<EntityAnswer>> = found.iter().map(|text| text.iter().map(entity).collect()).collect();
    if single && answers.len() == 1 {
        return Entities::One(answers.remove(0));
    }
    Entities::PerText(answers)
}

/// [`entity_lists`] as JSON, as parity compares it with the pipeline's own.
pub fn entities(found: &[Vec<Entity>], single: bool) -> Value {
    serde_json::to_value(entity_lists(found, single)).unwrap_or(Value::Null)
}

/// One span of a context that answers a question, as the question-answering pipeline
/// writes it: `answer` is the context's characters `start..end`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpanAnswer {
    /// The span's probability (summed where windows or spans give the same text).
    pub score: f64,
    /// First character of the answer in the context (Unicode characters, not bytes).
    pub start: usize,
    /// One past its last character.
    pub end: usize,
    /// The answer; `""` at 0..0 for "no answer" (`handle_impossible_answer`).
    pub answer: String,
}

/// One question's answer: the only answer left, or the best ones in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QuestionAnswer {
    One(SpanAnswer),
    Ranked(Vec<SpanAnswer>),
}

/// A question-answering answer: one question's, or one per question.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QuestionAnswers {
    One(QuestionAnswer),
    PerQuestion(Vec<QuestionAnswer>),
}

fn span(answer: &Answer) -> SpanAnswer {
    SpanAnswer {
        score: answer.score,
        start: answer.start,
        end: answer.end,
        answer: answer.answer.clone(),
    }
}

/// The pipeline's answer to the questions whose answers are `found`, best first each.
pub fn question_answers(found: &[Vec<Answer>]) -> QuestionAnswers {
    let mut per_question: Vec<QuestionAnswer> = found
        .iter()
        .map(|answers| match answers.as_slice() {
            [only] => QuestionAnswer::One(span(only)),
            several => QuestionAnswer::Ranked(several.iter().map(span).collect()),
        })
        .collect();
    if per_question.len() == 1 {
        return QuestionAnswers::One(per_question.remove(0));
    }
    QuestionAnswers::PerQuestion(per_question)
}

/// [`question_answers`] as JSON, as parity compares it with the pipeline's own.
pub fn answers(found: &[Vec<Answer>]) -> Value {
    serde_json::to_value(question_answers(found)).unwrap_or(Value::Null)
}

/// A box in whole pixels of the image: each corner of the detection's box truncated, as
/// the object-detection pipeline's `box.int()` does (the corners are never negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PixelBox {
    pub xmin: u32,
    pub ymin: u32,
    pub xmax: u32,
    pub ymax: u32,
}

/// One object found in an image.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DetectedObject {
    pub score: f64,
    pub label: &'static str,
    #[serde(rename = "box")]
    pub bbox: PixelBox,
}

/// An object-detection answer: one image's objects, or a list per image.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ObjectDetections {
    One(Vec<DetectedObject>),
    PerImage(Vec<Vec<DetectedObject>>),
}

/// The detection with its label named by `labels`. Every id has a name: a detector's run
/// refuses class logits with another column count than its labels (an empty name else).
pub fn detected_object(labels: &[&'static str], detection: &RawDetection) -> DetectedObject {
    let corner = |value: f64| value as u32;
    DetectedObject {
        score: detection.score,
        label: labels.get(detection.label_id).copied().unwrap_or_default(),
        bbox: PixelBox {
            xmin: corner(detection.bbox.xmin),
            ymin: corner(detection.bbox.ymin),
            xmax: corner(detection.bbox.xmax),
            ymax: corner(detection.bbox.ymax),
        },
    }
}

/// The pipeline's answer for images whose detections are `found`; `single` when one image
/// was sent alone (not in a list).
pub fn object_detections(labels: &[&'static str], found: &[Vec<RawDetection>], single: bool) -> ObjectDetections {
    let mut per_image: Vec<Vec<DetectedObject>> = found
        .iter()
        .map(|image| {
            image
                .iter()
                .map(|detection| detected_object(labels, detection))
                .collect()
        })
        .collect();
    if single && per_image.len() == 1 {
        return ObjectDetections::One(per_image.remove(0));
    }
    ObjectDetections::PerImage(per_image)
}

/// A candidate label and its score: one entry of a zero-shot answer (the label is the
/// request's own).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CandidateScore {
    /// The float32 score widened to a double, as Python's `score.item()` does.
    pub score: f64,
    pub label: String,
}

/// A zero-shot image classifier's answer: one image's candidates best first, or a list
/// per image.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ZeroShotAnswer {
    One(Vec<CandidateScore>),
    PerImage(Vec<Vec<CandidateScore>>),
}

/// The pipeline's answer for images whose scores over `candidate_labels` (in their
/// order) are `scores`; `single` when one image was sent alone (not in a list).
pub fn zero_shot(candidate_labels: &[String], scores: &[Vec<f32>], single: bool) -> ZeroShotAnswer {
    let mut per_image: Vec<Vec<CandidateScore>> = scores
        .iter()
        .map(|row| {
            ranked(row, None)
                .iter()
                .map(|entry| CandidateScore {
                    score: f64::from(entry.score),
                    label: candidate_labels.get(entry.id).cloned().unwrap_or_default(),
                })
                .collect()
        })
        .collect();
    if single && per_image.len() == 1 {
        return ZeroShotAnswer::One(per_image.remove(0));
    }
    ZeroShotAnswer::PerImage(per_image)
}

/// Max |score difference| between two answers of the same shape, or the first
/// structural difference (a label, an offset, a word, an order, a length, a missing
/// score) as `Err`: every field but `score` must be equal.
pub fn difference(rust: &Value, python: &Value, place: &str) -> Result<f64, String> {
    match (rust, python) {
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!("{place}: {} entries, Python has {}", a.len(), b.len()));
            }
            a.iter().zip(b).enumerate().try_fold(0.0f64, |max, (i, (x, y))| {
                Ok(max.max(difference(x, y, &format!("{place}[{i}]"))?))
            })
        }
        (Value::Object(a), Value::Object(b)) => {
            let same_fields = a.len() == b.len() && a.iter().all(|(key, x)| key == "score" || b.get(key) == Some(x));
            if !same_fields {
                return Err(format!("{place}: {rust}, Python has {python}"));
            }
            let score = |v: &serde_json::Map<String, Value>| v.get("score").and_then(Value::as_f64);
            match (score(a), score(b)) {
                (Some(x), Some(y)) => Ok((x - y).abs()),
                _ => Err(format!("{place}: no score in {rust} or {python}")),
            }
        }
        _ => Err(format!("{place}: {rust}, Python has {python}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LABELS: [&str; 3] = ["a", "b", "c"];

    fn found(score: f64, answer: &str, start: usize) -> Answer {
        Answer {
            score,
            start,
            end: start + answer.chars().count(),
            answer: answer.into(),
        }
    }

    #[test]
    fn a_zero_shot_answer_ranks_every_candidate_and_keeps_their_order_on_ties() {
        let labels: Vec<String> = ["cat", "dog", "cow"].map(String::from).to_vec();
        let scores = vec![vec![0.25f32, 0.5, 0.25]];
        let one = serde_json::to_value(zero_shot(&labels, &scores, true)).unwrap();
        let ranked = json!([
            {"score": 0.5, "label": "dog"},
            {"score": 0.25, "label": "cat"},
            {"score": 0.25, "label": "cow"}
        ]);
        assert_eq!(one, ranked);
        let listed = serde_json::to_value(zero_shot(&labels, &scores, false)).unwrap();
        assert_eq!(listed, json!([ranked]));
    }

    #[test]
    fn question_answers_take_the_pipelines_shapes() {
        let best = found(0.9, "16.2", 11);
        let next = found(0.05, "PostgreSQL 16.2", 0);
        let one = json!({"score": 0.9, "start": 11, "end": 15, "answer": "16.2"});
        assert_eq!(answers(&[vec![best.clone()]]), one);
        assert_eq!(
            answers(&[vec![best.clone(), next.clone()]]),
            json!([one, {"score": 0.05, "start": 0, "end": 15, "answer": "PostgreSQL 16.2"}])
        );
        // Several questions: one answer each, each in its own shape.
        let both = answers(&[vec![best.clone()], vec![best.clone(), next]]);
        assert_eq!(both[0], one);
        assert_eq!(both[1].as_array().map(Vec::len), Some(2));
        // No span left (every candidate filtered, no-answer not allowed): an empty list.
        assert_eq!(answers(&[Vec::new()]), json!([]));
    }

    #[test]
    fn one_text_without_top_k_is_a_list_of_the_best() {
        let answer = answer(&LABELS, &[vec![0.1, 0.7, 0.2]], TopK::Absent, true);
        assert_eq!(answer, json!([{"label": "b", "score": f64::from(0.7f32)}]));
    }

    #[test]
    fn one_text_with_top_k_is_a_flat_ranked_list() {
        let answer = answer(&LABELS, &[vec![0.1, 0.7, 0.2]], TopK::K(2), true);
        assert_eq!(answer[0]["label"], "b");
        assert_eq!(answer[1]["label"], "c");
        assert_eq!(answer.as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_list_with_top_k_is_a_list_of_lists() {
        let answer = answer(&LABELS, &[vec![0.1, 0.7, 0.2], vec![0.5, 0.2, 0.3]], TopK::All, false);
        assert_eq!(answer[1][0]["label"], "a");
        assert_eq!(answer[0].as_array().unwrap().len(), 3);
    }

    #[test]
    fn a_list_without_top_k_is_one_best_per_text() {
        let answer = answer(
            &LABELS,
            &[vec![0.1, 0.7, 0.2], vec![0.5, 0.2, 0.3]],
            TopK::Absent,
            false,
        );
        assert_eq!(answer[0]["label"], "b");
        assert_eq!(answer[1]["label"], "a");
    }

    #[test]
    fn difference_is_the_largest_score_gap_and_refuses_other_changes() {
        let a = json!([{"label": "a", "score": 0.5}, {"label": "b", "score": 0.25}]);
        let b = json!([{"label": "a", "score": 0.5}, {"label": "b", "score": 0.5}]);
        assert_eq!(difference(&a, &b, "x"), Ok(0.25));
        let swapped = json!([{"label": "b", "score": 0.25}, {"label": "a", "score": 0.5}]);
        assert!(difference(&a, &swapped, "x").unwrap_err().contains("x[0]"));
        assert!(difference(&a, &json!([{"label": "a", "score": 0.5}]), "x").is_err());
        let extra = json!([{"label": "a", "score": 0.5, "id": 0}, {"label": "b", "score": 0.25}]);
        assert!(difference(&extra, &a, "x").is_err());
        let entity = json!({"entity_group": "VERSION", "score": 0.9, "word": "16. 2", "start": 11, "end": 15});
        let moved = json!({"entity_group": "VERSION", "score": 0.9, "word": "16. 2", "start": 11, "end": 16});
        assert!(
            difference(&entity, &moved, "e").is_err(),
            "an offset is compared exactly"
        );
    }

    #[test]
    fn entities_take_the_pipeline_shape_per_strategy() {
        let token = Entity {
            label: "B-VERSION",
            label_id: 3,
            score: 0.5,
            index: Some(3),
            word: "##2".into(),
            start: 5,
            end: 6,
        };
        let group = Entity {
            label: "VERSION",
            label_id: 3,
            score: 0.25,
            index: None,
            word: "v2".into(),
            start: 4,
            end: 6,
        };
        assert_eq!(
            entities(&[vec![token.clone()]], true),
            json!([{"entity": "B-VERSION", "score": 0.5, "index": 3, "word": "##2", "start": 5, "end": 6}])
        );
        assert_eq!(
            entities(&[vec![group.clone()], vec![]], false),
            json!([[{"entity_group": "VERSION", "score": 0.25, "word": "v2", "start": 4, "end": 6}], []])
        );
    }
}
