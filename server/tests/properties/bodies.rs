//! Request bodies of every protocol, against the server of the fake models (one task
//! each; `common::fake`): a valid body of each route with one part changed — a field's
//! value replaced by any JSON, a field removed, an unknown one added. Whatever the body,
//! the answer is 2xx or a 4xx with a JSON body that says what is wrong, never a 5xx or
//! a dropped connection; and a refusal names the field it is about.

use std::io::Cursor;
use std::sync::OnceLock;

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::common::fake::{ANSWERER, CLASSIFIER, CRASH, DETECTOR, EMBEDDER, IMAGES, PAIRS, TAGGER};
use crate::common::start_fakes;
use crate::{config, hostile_text};

/// A runtime serving the fakes for every case, with its base URL and a client.
struct Served {
    runtime: tokio::runtime::Runtime,
    base: String,
    client: reqwest::Client,
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let base = runtime.block_on(start_fakes());
        Served {
            runtime,
            base,
            client: reqwest::Client::new(),
        }
    })
}

/// A 4×4 PNG as base64, for the image routes' JSON bodies.
fn png_base64() -> String {
    let image = image::RgbImage::from_fn(4, 4, |x, y| image::Rgb([(x * 60) as u8, (y * 60) as u8, 128]));
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
        .expect("a PNG is written");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every route that takes a JSON body, with a valid body that uses every field.
fn routes() -> Vec<(String, Value)> {
    let png = png_base64();
    vec![
        (
            format!("/models/{CLASSIFIER}/predict"),
            json!({"inputs": ["good rust", "bad python"], "parameters": {"top_k": 2, "function_to_apply": "softmax"}}),
        ),
        (
            format!("/models/{EMBEDDER}/predict"),
            json!({"inputs": "the release", "parameters": {"normalize": true}}),
        ),
        (
            format!("/models/{TAGGER}/predict"),
            json!({"inputs": "rust and python", "parameters": {"aggregation_strategy": "first", "ignore_labels": ["O"]}}),
        ),
        (
            format!("/models/{ANSWERER}/predict"),
            json!({"inputs": {"question": "the release", "context": "rust is fast and python is slow"},
                   "parameters": {"top_k": 2, "doc_stride": 2, "max_answer_len": 5, "max_seq_len": 12,
                                  "max_question_len": 4, "handle_impossible_answer": true, "align_to_words": false}}),
        ),
        (
            format!("/models/{IMAGES}/predict"),
            json!({"inputs": [png.clone()], "parameters": {"top_k": 1, "function_to_apply": "sigmoid"}}),
        ),
        (
            format!("/models/{DETECTOR}/predict"),
            json!({"inputs": png.clone(), "parameters": {"threshold": 0.2, "iou_threshold": 0.5}}),
        ),
        (
            format!("/models/{PAIRS}/predict"),
            json!({"inputs": png.clone(), "parameters": {"candidate_labels": ["good", "bad"], "hypothesis_template": "it is {}"}}),
        ),
        (format!("/models/{PAIRS}/image-embeddings"), json!({"inputs": [png]})),
        (
            "/v1/embeddings".into(),
            json!({"model": EMBEDDER, "input": ["good", "bad"], "encoding_format": "float", "dimensions": 2, "user": "u"}),
        ),
        (
            "/embed".into(),
            json!({"model": EMBEDDER, "inputs": ["good"], "normalize": false, "truncate": true}),
        ),
        (
            "/predict".into(),
            json!({"model": CLASSIFIER, "inputs": [["good"], ["bad"]], "raw_scores": true, "truncate": false}),
        ),
        (
            "/tokenize".into(),
            json!({"model": CLASSIFIER, "inputs": "rust is fast", "add_special_tokens": false}),
        ),
        (
            format!("/v2/models/{CLASSIFIER}/infer"),
            json!({"id": "1", "inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": ["good", "bad"]}],
                   "outputs": [{"name": "logits"}]}),
        ),
    ]
}

/// Any JSON: every scalar kind (numbers huge, tiny, negative and fractional; hostile
/// strings), nested arrays and objects with hostile keys.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![0.0, -0.0, 0.5, 1.0, 2.5, -3.0, 1e300, -1e-300, 4294967296.0]).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |n| n.is_finite())
            .prop_map(Value::from),
        hostile_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to a valid body.
#[derive(Debug, Clone)]
enum Change {
    /// The value at a place (the `n`th of the body's places) becomes any JSON.
    Replace(prop::sample::Index, Value),
    /// The field at a place is left out.
    Remove(prop::sample::Index),
    /// An object at a place gains a field no schema has.
    Add(prop::sample::Index, Value),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => (any::<prop::sample::Index>(), any_json()).prop_map(|(at, value)| Change::Replace(at, value)),
        2 => any::<prop::sample::Index>().prop_map(Change::Remove),
        1 => (any::<prop::sample::Index>(), any_json()).prop_map(|(at, value)| Change::Add(at, value)),
    ]
}

/// Every place in `value` below the top, as its path of keys and indexes.
fn places(value: &Value, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    let children: Vec<(String, &Value)> = match value {
        Value::Object(fields) => fields.iter().map(|(key, child)| (key.clone(), child)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(index, child)| (index.to_string(), child))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        path.push(key);
        found.push(path.clone());
        places(child, path, found);
        path.pop();
    }
}

fn pointer(path: &[String]) -> String {
    path.iter().map(|key| format!("/{key}")).collect()
}

/// `body` with `change` applied; the keys a refusal of it may name.
fn changed(body: &Value, change: &Change) -> (Value, Vec<String>) {
    let mut found = Vec::new();
    places(body, &mut Vec::new(), &mut found);
    let mut body = body.clone();
    let names = |path: &[String]| -> Vec<String> {
        path.iter()
            .filter(|key| key.parse::<usize>().is_err())
            .cloned()
            .collect()
    };
    match change {
        Change::Replace(at, value) => {
            let path = &found[at.index(found.len())];
            if let Some(place) = body.pointer_mut(&pointer(path)) {
                *place = value.clone();
            }
            let mut named = names(path);
            if let Value::Object(fields) = value {
                named.extend(fields.keys().cloned());
            }
            (body, named)
        }
        Change::Remove(at) => {
            let path = &found[at.index(found.len())];
            let (last, parent) = path
                .split_last()
                .map_or((None, &[][..]), |(last, parent)| (Some(last), parent));
            match (body.pointer_mut(&pointer(parent)), last) {
                (Some(Value::Object(fields)), Some(key)) => {
                    fields.remove(key);
                }
                (Some(Value::Array(items)), Some(index)) => {
                    if let Ok(index) = index.parse::<usize>()
                        && index < items.len()
                    {
                        items.remove(index);
                    }
                }
                _ => {}
            }
            (body, names(path))
        }
        Change::Add(at, value) => {
            let mut objects: Vec<Vec<String>> = vec![Vec::new()];
            objects.extend(
                found
                    .iter()
                    .filter(|path| body.pointer(&pointer(path)).is_some_and(Value::is_object))
                    .cloned(),
            );
            let path = &objects[at.index(objects.len())];
            if let Some(Value::Object(fields)) = body.pointer_mut(&pointer(path)) {
                fields.insert("unheard_of".into(), value.clone());
            }
            let mut named = names(path);
            named.push("unheard_of".into());
            (body, named)
        }
    }
}

/// The refusal's message in each protocol's shape.
fn message_of(answer: &Value) -> Option<&str> {
    answer["error"].as_str().or_else(|| answer["error"]["message"].as_str())
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn a_changed_body_is_answered_or_refused_by_name_never_failed(
        route in any::<prop::sample::Index>(),
        change in change(),
    ) {
        let routes = routes();
        let (path, valid) = &routes[route.index(routes.len())];
        let (body, named) = changed(valid, &change);
        // The fakes' word that fails a batch on purpose is the failure test's, not this one's.
        prop_assume!(!body.to_string().to_lowercase().contains(CRASH));
        let served = served();
        let (status, text) = served.runtime.block_on(async {
            let response = served
                .client
                .post(format!("{}{path}", served.base))
                .json(&body)
                .send()
                .await
                .map_err(|error| format!("no answer: {error}"))?;
            let status = response.status().as_u16();
            let text = response.text().await.map_err(|error| format!("no body: {error}"))?;
            Ok::<_, String>((status, text))
        }).map_err(TestCaseError::fail)?;
        prop_assert!(status < 500, "POST {path} {body} answered {status}: {text}");
        if status >= 400 {
            let answer: Value = serde_json::from_str(&text)
                .map_err(|_| TestCaseError::fail(format!("POST {path} {body}: {status} without a JSON body: {text}")))?;
            let message = message_of(&answer)
                .ok_or_else(|| TestCaseError::fail(format!("POST {path} {body}: {status} without a message: {text}")))?;
            prop_assert!(
                named.iter().any(|name| message.contains(name.as_str())),
                "POST {path} {body}: the refusal ({status}) names none of {named:?}: {message}"
            );
        }
    }
}
