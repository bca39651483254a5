//! How a JSON body becomes a request type, and the field types requests share. Every
//! request is a serde type (its OpenAPI schema derived from the same declaration), read by
//! [`parse`]: malformed JSON is 400, and a field missing, unknown, of the wrong type or
//! out of range is 422 with a message that names it by its path (`parameters.top_k`,
//! `inputs[3]`).

use std::borrow::Cow;
use std::fmt;

use modelcrate_core::TopK;
use modelcrate_runtime::{AggregationStrategy, ClassificationFunction};
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ApiError;

/// `body` read as a `T`, or the error that names what is wrong and where. Every request
/// is a JSON object: serde would also read a struct from an array of its fields.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    if first != Some(&b'{') {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|error| ApiError::MalformedJson(error.to_string()))?;
        return from_value(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|error| refusal(&error.path().to_string(), error.into_inner()))?;
    deserializer
        .end()
        .map_err(|error| ApiError::MalformedJson(error.to_string()))?;
    Ok(value)
}

/// A body already parsed as JSON, read as a `T` as [`parse`] reads it.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::Validation(format!(
            "the body must be a JSON object, got {}",
            kind(&value)
        )));
    }
    deserialized(value, None)
}

/// `value` (parameters gathered from a query string or a form) read as a `T`, its errors
/// named as those of field `field` of a body.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value, field: &str) -> Result<T, ApiError> {
    deserialized(value, Some(field))
}

/// `value` read as a `T`, its errors named by their path below `field` (the body's own
/// when `None`).
fn deserialized<T: DeserializeOwned>(value: serde_json::Value, field: Option<&str>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = match (error.path().to_string(), field) {
            (path, None) => path,
            (path, Some(field)) if path == "." => field.to_string(),
            (path, Some(field)) => format!("{field}.{path}"),
        };
        refusal(&path, error.into_inner())
    })
}

/// A deserialization error as the client should read it: syntax is malformed JSON; data
/// errors name their field by `path`.
fn refusal(path: &str, inner: serde_json::Error) -> ApiError {
    if !inner.is_data() {
        return ApiError::MalformedJson(inner.to_string());
    }
    // serde_json appends where in the text the error is; the field path says it better.
    let located = inner.to_string();
    let message = located
        .strip_suffix(&format!(" at line {} column {}", inner.line(), inner.column()))
        .unwrap_or(&located);
    ApiError::Validation(named(path, message))
}

/// `message` about the value at `path` (`.` for the body itself), worded to name it.
fn named(path: &str, message: &str) -> String {
    let prefix = if path == "." { String::new() } else { format!("{path}.") };
    if let Some(rest) = message.strip_prefix("missing field `") {
        return format!("missing field `{prefix}{rest}");
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // The path already ends at the unknown field.
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let named = if path == field || path.ends_with(&format!(".{field}")) {
            path.to_string()
        } else {
            format!("{prefix}{field}")
        };
        return format!("unknown field `{named}`{}", expected.replacen(',', ";", 1));
    }
    let field = if path == "." {
        "the body".to_string()
    } else {
        format!("`{path}`")
    };
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((variant, expected)) = rest.split_once(", expected ")
    {
        return format!("{field} must be {expected}, got {variant}");
    }
    for kind in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(kind)
            && let Some((unexpected, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "{field} must be {}, got {}",
                expectation(expected),
                described(unexpected)
            );
        }
    }
    if path == "." {
        message.to_string()
    } else {
        format!("{field} {message}")
    }
}

/// serde's name of what was expected, as a client reads it.
fn expectation(expected: &str) -> &str {
    match expected {
        _ if expected.starts_with("struct ") => "a JSON object",
        "a boolean" => "true or false",
        "u64" | "usize" | "u32" => "a non-negative integer",
        "a sequence" => "an array",
        _ => expected,
    }
}

/// serde's name of an unexpected value (`integer \`3\``) as a kind (`a number`).
fn described(unexpected: &str) -> Cow<'_, str> {
    let kind = unexpected.split(' ').next().unwrap_or(unexpected);
    Cow::Borrowed(match kind {
        "integer" | "floating" => "a number",
        "string" => "a string",
        "boolean" => "a boolean",
        "null" | "unit" => "null",
        "sequence" => "an array",
        "map" => "an object",
        _ => return Cow::Borrowed(unexpected),
    })
}

/// What kind of JSON value `value` is, as a refusal names it (`a number`).
pub fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A field holding a JSON object, read as `T`, or `null`/absent as `None` (with
/// `#[serde(default, deserialize_with = "wire::object")]`). serde's own struct reading
/// also takes an array of the fields' values (`"parameters": [null, 2]`), which no client
/// means and the schema does not allow.
pub fn object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Ok(Option::<Object<T>>::deserialize(deserializer)?.map(|Object(value)| value))
}

/// A field holding an array of JSON objects, each read as `T` as [`object`] reads one.
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Ok(Vec::<Object<T>>::deserialize(deserializer)?
        .into_iter()
        .map(|Object(value)| value)
        .collect())
}

/// [`objects`], or `null`/absent as `None`.
pub fn optional_objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Vec<T>>, D::Error> {
    Ok(Option::<Vec<Object<T>>>::deserialize(deserializer)?
        .map(|list| list.into_iter().map(|Object(value)| value).collect()))
}

/// A `T` read from a JSON object only. Its fields are read through the same map, so an
/// error inside still names its path (`parameters.top_k`).
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

/// What a refusal of an empty list of inputs says, and of an empty text (TEI calls
/// both errors `Empty`).
pub const EMPTY_LIST: &str = "is an empty array";
pub const EMPTY_TEXT: &str = "is empty or only whitespace";

/// A text: a non-empty string with something besides whitespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().is_empty() {
            return Err(de::Error::custom(EMPTY_TEXT));
        }
        Ok(Self(text))
    }
}

impl PartialSchema for Text {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .pattern(Some(r"\S"))
            .description(Some("a text, not only whitespace"))
            .into()
    }
}

impl ToSchema for Text {}

/// `inputs`: one text, or a list of them. Whether it was one or a list decides the
/// answer's shape, as in the pipelines.
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// These inputs of field `field`, if a list holds at most `max_inputs` (`noun` names
    /// one input in the refusal).
    pub fn at_most(self, max_inputs: usize, field: &str, noun: &str) -> Result<Self, ApiError> {
        let count = match &self {
            Self::One(_) => 1,
            Self::Many(texts) => texts.len(),
        };
        batch_size(count, field, max_inputs, noun)?;
        Ok(self)
    }
}

/// A list of `count` inputs in `field` must hold at most `max_inputs` of them
/// (`--max-client-batch-size`); `noun` names one input.
pub fn batch_size(count: usize, field: &str, max_inputs: usize, noun: &str) -> Result<(), ApiError> {
    if count > max_inputs {
        return Err(ApiError::PayloadTooLarge(format!(
            "`{field}` has {count} {noun}s; at most {max_inputs} are allowed per request (--max-client-batch-size)"
        )));
    }
    Ok(())
}

impl<'de> Deserialize<'de> for Inputs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        one_or_many::<D, Text>(deserializer)
    }
}

/// `inputs` read as a text or a non-empty list whose items are read as `I`: a text, or
/// a refusal of its own (OpenAI's token ids). Every item's error names its index.
pub fn one_or_many<'de, D: Deserializer<'de>, I: Deserialize<'de> + Into<String>>(
    deserializer: D,
) -> Result<Inputs, D::Error> {
    struct InputsVisitor<I>(std::marker::PhantomData<I>);

    impl<'de, I: Deserialize<'de> + Into<String>> Visitor<'de> for InputsVisitor<I> {
        type Value = Inputs;

        fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
            formatter.write_str("a string or an array of strings")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Inputs, E> {
            Text::deserialize(de::value::StrDeserializer::new(text)).map(|Text(text)| Inputs::One(text))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Inputs, A::Error> {
            let mut texts = Vec::with_capacity(items.size_hint().unwrap_or(0).min(1024));
            while let Some(item) = items.next_element::<I>()? {
                texts.push(item.into());
            }
            if texts.is_empty() {
                return Err(de::Error::custom(format!("{EMPTY_LIST}; send at least one text")));
            }
            Ok(Inputs::Many(texts))
        }
    }

    deserializer.deserialize_any(InputsVisitor::<I>(std::marker::PhantomData))
}

impl From<Text> for String {
    fn from(text: Text) -> Self {
        text.0
    }
}

impl PartialSchema for Inputs {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Text::schema())
            .item(ArrayBuilder::new().items(Text::schema()).min_items(Some(1)))
            .description(Some("one text, or a list of texts (answered as a list)"))
            .into()
    }
}

impl ToSchema for Inputs {}

/// The pipelines' `top_k`: absent (the pipeline's default: the field's `Default`),
/// `null` (every label), or a positive count. A field of this type must be
/// `#[serde(default)]`, not an `Option`, or `null` would read as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopKParam(pub TopK);

impl Default for TopKParam {
    fn default() -> Self {
        Self(TopK::Absent)
    }
}

impl<'de> Deserialize<'de> for TopKParam {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self(match Option::<Count>::deserialize(deserializer)? {
            None => TopK::All,
            Some(Count(k)) => TopK::K(k),
        }))
    }
}

impl PartialSchema for TopKParam {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::Integer,
                Type::Null,
            ]))
            .minimum(Some(1))
            .description(Some("how many labels, best first; null for every label"))
            .into()
    }
}

impl ToSchema for TopKParam {}

/// A positive count (OpenAI's `dimensions`, a `top_k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AtLeast(1)).map(Count)
    }
}

/// A non-negative integer (a stride).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole(pub usize);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AtLeast(0)).map(Whole)
    }
}

impl PartialSchema for Whole {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).into()
    }
}

impl ToSchema for Whole {}

/// Reads an integer of at least `.0`. JSON has one kind of number, and JSON Schema's
/// `integer` is any number without a fraction: `3.0` reads as 3, as a client that wrote
/// it in Python or JavaScript means; `3.5` is refused.
struct AtLeast(u64);

impl AtLeast {
    fn refusal<E: de::Error>(&self, got: impl fmt::Display) -> E {
        let kind = if self.0 == 1 { "positive" } else { "non-negative" };
        E::custom(format!("must be a {kind} integer, got {got}"))
    }
}

impl<'de> Visitor<'de> for AtLeast {
    type Value = usize;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        match self.0 {
            1 => formatter.write_str("a positive integer"),
            _ => formatter.write_str("a non-negative integer"),
        }
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<usize, E> {
        if n < self.0 {
            return Err(self.refusal(n));
        }
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<usize, E> {
        match u64::try_from(n) {
            Ok(n) => self.visit_u64(n),
            Err(_) => Err(self.refusal(n)),
        }
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<usize, E> {
        if n.is_finite() && n.fract() == 0.0 && n >= 0.0 {
            // Past u64's range the cast saturates, as a count that large does.
            self.visit_u64(n as u64)
        } else {
            Err(self.refusal(n))
        }
    }
}

impl PartialSchema for Count {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).into()
    }
}

impl ToSchema for Count {}

/// The pipeline's `function_to_apply`, named case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Function(pub ClassificationFunction);

impl<'de> Deserialize<'de> for Function {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ClassificationFunction::parse(&name)
            .map(Self)
            .ok_or_else(|| de::Error::custom(format!("must be \"softmax\", \"sigmoid\" or \"none\", got {name:?}")))
    }
}

impl PartialSchema for Function {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["softmax", "sigmoid", "none"]))
            .description(Some(
                "the function from logits to scores; the model's problem type decides when absent",
            ))
            .into()
    }
}

impl ToSchema for Function {}

/// The token-classification pipeline's `aggregation_strategy`, named case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy(pub AggregationStrategy);

impl<'de> Deserialize<'de> for Strategy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        AggregationStrategy::parse(&name).map(Self).ok_or_else(|| {
            de::Error::custom(format!(
                "must be \"none\", \"simple\", \"first\", \"average\" or \"max\", got {name:?}"
            ))
        })
    }
}

impl PartialSchema for Strategy {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(AggregationStrategy::ALL.map(AggregationStrategy::as_str)))
            .into()
    }
}

impl ToSchema for Strategy {}

/// Bytes as base64 text, as a schema: what JSON carries an image or an embedding in.
pub fn base64_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Byte)))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Request {
        inputs: Inputs,
        #[serde(default, deserialize_with = "object")]
        parameters: Option<Parameters>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Parameters {
        #[serde(default)]
        top_k: TopKParam,
        normalize: Option<bool>,
    }

    fn message(body: &str) -> String {
        match parse::<Request>(body.as_bytes()) {
            Ok(request) => panic!("{body} parsed: {request:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn refusals_name_the_field_by_its_path() {
        assert!(message("{").starts_with("malformed JSON"), "{}", message("{"));
        assert!(message(r#"{"inputs": "a"} x"#).starts_with("malformed JSON"));
        assert!(message("").starts_with("malformed JSON"));
        assert_eq!(message("[1]"), "the body must be a JSON object, got an array");
        assert_eq!(message("{}"), "missing field `inputs`");
        assert_eq!(
            message(r#"{"inputs": 3}"#),
            "`inputs` must be a string or an array of strings, got a number"
        );
        assert_eq!(message(r#"{"inputs": " "}"#), "`inputs` is empty or only whitespace");
        assert_eq!(
            message(r#"{"inputs": []}"#),
            "`inputs` is an empty array; send at least one text"
        );
        assert_eq!(
            message(r#"{"inputs": ["a", 2]}"#),
            "`inputs[1]` must be a string, got a number"
        );
        assert_eq!(
            message(r#"{"inputs": ["a", ""]}"#),
            "`inputs[1]` is empty or only whitespace"
        );
        assert!(message(r#"{"inputs": "a", "topk": 1}"#).starts_with("unknown field `topk`; expected"));
        assert!(message(r#"{"inputs": "a", "parameters": {"k": 1}}"#).starts_with("unknown field `parameters.k`"));
        for (top_k, got) in [
            ("0", "0"),
            ("1.5", "1.5"),
            ("-2", "-2"),
            ("0.0", "0"),
            (r#""2""#, "a string"),
        ] {
            assert_eq!(
                message(&format!(r#"{{"inputs": "a", "parameters": {{"top_k": {top_k}}}}}"#)),
                format!("`parameters.top_k` must be a positive integer, got {got}")
            );
        }
        assert_eq!(
            message(r#"{"inputs": "a", "parameters": {"normalize": "yes"}}"#),
            "`parameters.normalize` must be true or false, got a string"
        );
        assert_eq!(
            message(r#"{"inputs": "a", "parameters": 3}"#),
            "`parameters` must be a JSON object, got a number"
        );
        // serde alone reads a struct from an array of its fields' values.
        assert_eq!(
            message(r#"{"inputs": "a", "parameters": [null, true]}"#),
            "`parameters` must be a JSON object, got an array"
        );
        assert_eq!(
            message(r#"{"inputs": "a", "parameters": []}"#),
            "`parameters` must be a JSON object, got an array"
        );
    }

    #[test]
    fn a_count_written_with_a_zero_fraction_is_that_count() {
        let top_k = |body: &str| parse::<Request>(body.as_bytes()).map(|r| r.parameters.unwrap_or_default().top_k.0);
        assert_eq!(
            top_k(r#"{"inputs": "a", "parameters": {"top_k": 3.0}}"#).ok(),
            Some(TopK::K(3))
        );
        assert_eq!(
            top_k(r#"{"inputs": "a", "parameters": {"top_k": 3e0}}"#).ok(),
            Some(TopK::K(3))
        );
        let whole = |text: &str| serde_json::from_str::<Whole>(text).map(|Whole(n)| n).ok();
        assert_eq!(whole("0"), Some(0));
        assert_eq!(whole("0.0"), Some(0));
        assert_eq!(whole("7.0"), Some(7));
        assert_eq!(whole("7.25"), None);
        assert_eq!(whole("-1"), None);
        assert_eq!(whole("1e30"), Some(usize::MAX), "a count past any list is every item");
    }

    #[test]
    fn top_k_absent_null_and_a_count_are_three_answers() {
        let top_k = |body: &str| parse::<Request>(body.as_bytes()).map(|r| r.parameters.unwrap_or_default().top_k.0);
        assert_eq!(top_k(r#"{"inputs": "a"}"#).ok(), Some(TopK::Absent));
        assert_eq!(top_k(r#"{"inputs": "a", "parameters": {}}"#).ok(), Some(TopK::Absent));
        assert_eq!(top_k(r#"{"inputs": "a", "parameters": null}"#).ok(), Some(TopK::Absent));
        assert_eq!(
            top_k(r#"{"inputs": "a", "parameters": {"top_k": null}}"#).ok(),
            Some(TopK::All)
        );
        assert_eq!(
            top_k(r#"{"inputs": "a", "parameters": {"top_k": 2}}"#).ok(),
            Some(TopK::K(2))
        );
        let request = parse::<Request>(br#"{"inputs": ["a"], "parameters": {"normalize": false}}"#);
        let read = request.map(|r| (r.inputs, r.parameters.and_then(|p| p.normalize)));
        assert_eq!(read.ok(), Some((Inputs::Many(vec!["a".into()]), Some(false))));
    }
}
