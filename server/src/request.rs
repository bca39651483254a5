//! The Hugging Face Inference API requests, validated by hand so that every refusal
//! names the field and what was wrong with it. Text classification:
//! `{"inputs": str | [str], "parameters": {"top_k": n | null, "function_to_apply": …}}`;
//! feature extraction: `{"inputs": str | [str], "parameters": {"normalize": bool}}`;
//! token classification: `{"inputs": str | [str], "parameters": {"aggregation_strategy":
//! "none" | "simple" | "first" | "average" | "max", "ignore_labels": [str]}}`.

use modelcrate_core::TopK;
use modelcrate_runtime::{AggregationStrategy, ClassificationFunction};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Whether `inputs` was one string or a list: the pipeline answers in different shapes.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    One(String),
    Many(Vec<String>),
}

impl Inputs {
    /// The texts, owned (what the inference core takes).
    pub fn into_texts(self) -> Vec<String> {
        match self {
            Self::One(text) => vec![text],
            Self::Many(texts) => texts,
        }
    }

    /// Whether one text was sent alone (not in a list): its answer is not in a list.
    pub fn is_one(&self) -> bool {
        matches!(self, Self::One(_))
    }

    pub fn texts(&self) -> Vec<&str> {
        match self {
            Self::One(text) => vec![text.as_str()],
            Self::Many(texts) => texts.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassifyRequest {
    pub inputs: Inputs,
    pub top_k: TopK,
    pub function: Option<ClassificationFunction>,
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn invalid(message: String) -> ApiError {
    ApiError::Validation(message)
}

pub(crate) fn refuse_unknown(object: &Map<String, Value>, place: &str, known: &[&str]) -> Result<(), ApiError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(invalid(format!(
            "unknown field `{place}{key}`; expected one of {known:?}"
        ))),
        None => Ok(()),
    }
}

pub(crate) fn text(value: &Value, place: &str) -> Result<String, ApiError> {
    let Value::String(text) = value else {
        return Err(invalid(format!("`{place}` must be a string, got {}", kind(value))));
    };
    if text.trim().is_empty() {
        return Err(invalid(format!("`{place}` is empty or only whitespace")));
    }
    Ok(text.clone())
}

/// The texts of field `field` (absent when `None`): one string, or an array of 1 to
/// `max_inputs` of them. `noun` names one input in messages (`text`, `base64-encoded image`).
pub(crate) fn texts(value: Option<&Value>, field: &str, max_inputs: usize, noun: &str) -> Result<Inputs, ApiError> {
    match value {
        None => Err(invalid(format!("missing field `{field}`"))),
        Some(Value::Array(items)) => {
            batch_size(items.len(), field, max_inputs, noun)?;
            let texts = items
                .iter()
                .enumerate()
                .map(|(i, item)| text(item, &format!("{field}[{i}]")))
                .collect::<Result<_, _>>()?;
            Ok(Inputs::Many(texts))
        }
        Some(value @ Value::String(_)) => Ok(Inputs::One(text(value, field)?)),
        Some(value) => Err(invalid(format!(
            "`{field}` must be a string or an array of strings, got {}",
            kind(value)
        ))),
    }
}

/// A list of `count` inputs in `field` must hold 1 to `max_inputs` of them.
pub(crate) fn batch_size(count: usize, field: &str, max_inputs: usize, noun: &str) -> Result<(), ApiError> {
    if count == 0 {
        return Err(invalid(format!(
            "`{field}` is an empty array; send at least one {noun}"
        )));
    }
    if count > max_inputs {
        return Err(ApiError::PayloadTooLarge(format!(
            "`{field}` has {count} {noun}s; at most {max_inputs} are allowed per request (--max-client-batch-size)"
        )));
    }
    Ok(())
}

/// An optional boolean field (`null` counts as absent).
pub(crate) fn optional_bool(object: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(value) => Err(invalid(format!("`{field}` must be true or false, got {}", kind(value)))),
    }
}

/// An optional string field (`null` counts as absent).
pub(crate) fn optional_string<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(value) => Err(invalid(format!("`{field}` must be a string, got {}", kind(value)))),
    }
}

/// The body as a JSON object, or 400 (malformed) / 422 (not an object).
pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    match value {
        Value::Object(object) => Ok(object),
        other => Err(invalid(format!("the body must be a JSON object, got {}", kind(&other)))),
    }
}

/// `inputs` and the `parameters` object (empty when absent or null), with every field
/// outside `inputs`/`parameters` and every parameter outside `known` refused. `noun` names
/// one input in messages (`text`, `base64-encoded image`).
pub(crate) fn parse_body(
    body: &[u8],
    max_inputs: usize,
    known: &[&str],
    noun: &str,
) -> Result<(Inputs, Map<String, Value>), ApiError> {
    let object = object(body)?;
    refuse_unknown(&object, "", &["inputs", "parameters"])?;
    let inputs = texts(object.get("inputs"), "inputs", max_inputs, noun)?;
    let parameters = match object.get("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(parameters)) => {
            refuse_unknown(parameters, "parameters.", known)?;
            parameters.clone()
        }
        Some(value) => return Err(invalid(format!("`parameters` must be an object, got {}", kind(value)))),
    };
    Ok((inputs, parameters))
}

impl ClassifyRequest {
    /// Parses and validates a request body; `max_inputs` bounds a list of inputs.
    pub fn parse(body: &[u8], max_inputs: usize) -> Result<Self, ApiError> {
        let (inputs, parameters) = parse_body(body, max_inputs, &["top_k", "function_to_apply"], "text")?;
        let (top_k, function) = classification_parameters(&parameters)?;
        Ok(Self {
            inputs,
            top_k,
            function,
        })
    }
}

/// The classification pipelines' `top_k` and `function_to_apply`, from a parameters object.
pub fn classification_parameters(
    parameters: &Map<String, Value>,
) -> Result<(TopK, Option<ClassificationFunction>), ApiError> {
    let top_k = match parameters.get("top_k") {
        None => TopK::Absent,
        Some(Value::Null) => TopK::All,
        Some(value) => match value.as_u64() {
            Some(k) if k >= 1 => TopK::K(usize::try_from(k).unwrap_or(usize::MAX)),
            _ => {
                return Err(invalid(format!(
                    "`parameters.top_k` must be a positive integer or null, got {value}"
                )));
            }
        },
    };
    let function = match parameters.get("function_to_apply") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(ClassificationFunction::parse(name).ok_or_else(|| {
            invalid(format!(
                "`parameters.function_to_apply` must be \"softmax\", \"sigmoid\" or \"none\", got {name:?}"
            ))
        })?),
        Some(value) => {
            return Err(invalid(format!(
                "`parameters.function_to_apply` must be a string, got {}",
                kind(value)
            )));
        }
    };
    Ok((top_k, function))
}

/// A feature-extraction request: texts, and whether to L2-normalise (the model's own
/// choice when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    pub inputs: Inputs,
    pub normalize: Option<bool>,
}

impl EmbedRequest {
    pub fn parse(body: &[u8], max_inputs: usize) -> Result<Self, ApiError> {
        let (inputs, parameters) = parse_body(body, max_inputs, &["normalize"], "text")?;
        let normalize = match parameters.get("normalize") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(normalize)) => Some(*normalize),
            Some(value) => {
                return Err(invalid(format!(
                    "`parameters.normalize` must be true or false, got {}",
                    kind(value)
                )));
            }
        };
        Ok(Self { inputs, normalize })
    }
}

/// A token-classification request. The strategy defaults to `simple`, as the Inference
/// API's does (the Python pipeline's own default is `none`); `ignore_labels` to `["O"]`.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitiesRequest {
    pub inputs: Inputs,
    pub strategy: AggregationStrategy,
    pub ignore_labels: Option<Vec<String>>,
}

impl EntitiesRequest {
    pub fn parse(body: &[u8], max_inputs: usize) -> Result<Self, ApiError> {
        let (inputs, parameters) = parse_body(
            body,
            max_inputs,
            &["aggregation_strategy", "ignore_labels", "stride"],
            "text",
        )?;
        if parameters.get("stride").is_some_and(|stride| !stride.is_null()) {
            return Err(invalid(
                "`parameters.stride` is not supported: texts are truncated at the model's max length, not split into overlapping windows".into(),
            ));
        }
        let strategy = match parameters.get("aggregation_strategy") {
            None | Some(Value::Null) => AggregationStrategy::Simple,
            Some(Value::String(name)) => AggregationStrategy::parse(name).ok_or_else(|| {
                invalid(format!(
                    "`parameters.aggregation_strategy` must be \"none\", \"simple\", \"first\", \"average\" or \"max\", got {name:?}"
                ))
            })?,
            Some(value) => {
                return Err(invalid(format!(
                    "`parameters.aggregation_strategy` must be a string, got {}",
                    kind(value)
                )));
            }
        };
        let ignore_labels = match parameters.get("ignore_labels") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(label) => Ok(label.clone()),
                        other => Err(invalid(format!(
                            "`parameters.ignore_labels[{i}]` must be a string, got {}",
                            kind(other)
                        ))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(value) => {
                return Err(invalid(format!(
                    "`parameters.ignore_labels` must be an array of strings, got {}",
                    kind(value)
                )));
            }
        };
        Ok(Self {
            inputs,
            strategy,
            ignore_labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<ClassifyRequest, ApiError> {
        ClassifyRequest::parse(body.as_bytes(), 4)
    }

    fn message(body: &str) -> String {
        parse(body).unwrap_err().to_string()
    }

    #[test]
    fn one_text_and_a_list_parse_with_their_shape() {
        assert_eq!(parse(r#"{"inputs": "hi"}"#).unwrap().inputs, Inputs::One("hi".into()));
        assert_eq!(
            parse(r#"{"inputs": ["a", "b"]}"#).unwrap().inputs,
            Inputs::Many(vec!["a".into(), "b".into()])
        );
    }

    #[test]
    fn top_k_absent_null_and_number_are_distinct() {
        assert_eq!(parse(r#"{"inputs": "a"}"#).unwrap().top_k, TopK::Absent);
        assert_eq!(
            parse(r#"{"inputs": "a", "parameters": {"top_k": null}}"#)
                .unwrap()
                .top_k,
            TopK::All
        );
        assert_eq!(
            parse(r#"{"inputs": "a", "parameters": {"top_k": 2}}"#).unwrap().top_k,
            TopK::K(2)
        );
    }

    #[test]
    fn function_to_apply_is_parsed_case_insensitively() {
        let request = parse(r#"{"inputs": "a", "parameters": {"function_to_apply": "Sigmoid"}}"#).unwrap();
        assert_eq!(request.function, Some(ClassificationFunction::Sigmoid));
    }

    #[test]
    fn every_refusal_names_the_field() {
        assert!(message("{").starts_with("malformed JSON"));
        assert!(message("[1]").contains("must be a JSON object"));
        assert!(message("{}").contains("missing field `inputs`"));
        assert!(message(r#"{"inputs": 3}"#).contains("`inputs` must be a string or an array of strings, got a number"));
        assert!(message(r#"{"inputs": "  \n"}"#).contains("`inputs` is empty or only whitespace"));
        assert!(message(r#"{"inputs": []}"#).contains("empty array"));
        assert!(message(r#"{"inputs": ["a", 2]}"#).contains("`inputs[1]` must be a string"));
        assert!(message(r#"{"inputs": ["a", ""]}"#).contains("`inputs[1]` is empty"));
        assert!(message(r#"{"inputs": ["a","b","c","d","e"]}"#).contains("at most 4"));
        assert!(message(r#"{"inputs": "a", "topk": 1}"#).contains("unknown field `topk`"));
        assert!(message(r#"{"inputs": "a", "parameters": {"k": 1}}"#).contains("unknown field `parameters.k`"));
        assert!(message(r#"{"inputs": "a", "parameters": {"top_k": 0}}"#).contains("`parameters.top_k`"));
        assert!(message(r#"{"inputs": "a", "parameters": {"top_k": 1.5}}"#).contains("`parameters.top_k`"));
        assert!(
            message(r#"{"inputs": "a", "parameters": {"function_to_apply": "relu"}}"#).contains("function_to_apply")
        );
        assert!(message(r#"{"inputs": "a", "parameters": 3}"#).contains("`parameters` must be an object"));
    }

    #[test]
    fn an_embedding_request_takes_normalize_and_refuses_classification_parameters() {
        let request = EmbedRequest::parse(br#"{"inputs": ["a"], "parameters": {"normalize": false}}"#, 4).unwrap();
        assert_eq!(request.normalize, Some(false));
        assert_eq!(EmbedRequest::parse(br#"{"inputs": "a"}"#, 4).unwrap().normalize, None);
        let error = EmbedRequest::parse(br#"{"inputs": "a", "parameters": {"top_k": 1}}"#, 4).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `parameters.top_k`"),
            "{error}"
        );
        let error = EmbedRequest::parse(br#"{"inputs": "a", "parameters": {"normalize": "yes"}}"#, 4).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("`parameters.normalize` must be true or false, got a string"),
            "{error}"
        );
    }

    #[test]
    fn an_entities_request_defaults_to_simple_and_names_bad_parameters() {
        let parse = |body: &str| EntitiesRequest::parse(body.as_bytes(), 4);
        let request = parse(r#"{"inputs": "a"}"#).unwrap();
        assert_eq!(
            (request.strategy, request.ignore_labels),
            (AggregationStrategy::Simple, None)
        );
        let request =
            parse(r#"{"inputs": "a", "parameters": {"aggregation_strategy": "MAX", "ignore_labels": []}}"#).unwrap();
        assert_eq!(
            (request.strategy, request.ignore_labels),
            (AggregationStrategy::Max, Some(vec![]))
        );
        let message = |body: &str| parse(body).unwrap_err().to_string();
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

    #[test]
    fn too_many_inputs_is_payload_too_large() {
        let error = parse(r#"{"inputs": ["a","b","c","d","e"]}"#).unwrap_err();
        assert_eq!(error.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
