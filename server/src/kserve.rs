//! KServe's Open Inference Protocol (v2), REST: `GET /v2`, `/v2/health/live`,
//! `/v2/health/ready`, `/v2/models/{name}`, `/v2/models/{name}/ready` and
//! `POST /v2/models/{name}/infer`.
//!
//! A model's metadata comes from its crate's typed signature: the ONNX inputs (INT64
//! `[-1, -1]` token tensors), plus a `text` input of datatype BYTES, and the outputs the
//! server computes for the task. `infer` takes either `text` (the server tokenizes as the
//! model's crate does) or the token tensors (`input_ids`, `attention_mask`, and
//! `token_type_ids`, zeros when absent; rows right-padded, each no longer than the model's
//! max length, ids inside its vocabulary); texts are truncated at the max length, as the
//! Inference API route does. Both run in the model's batching engine.
//! Text classifiers answer `logits`, `scores` (the default function applied) and `label`
//! (BYTES); embedding models `sentence_embedding`. Token and image classifiers have
//! metadata here, and answer on `/models/{name}/predict`.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use modelcrate_core::{Infer, Timings, Truncate};
use modelcrate_runtime::Task;
use modelcrate_runtime::classification::best;
use modelcrate_runtime::signature::DType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokenizers::Encoding;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::lifecycle::Phase;
use crate::state::AppState;
use crate::wire;

/// `POST /v2/models/{name}/infer`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InferRequest {
    /// Echoed in the answer.
    pub id: Option<String>,
    /// Accepted, not used.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
    /// `text` (BYTES `[n]`), or the token tensors (INT64 `[rows, tokens]`).
    #[serde(deserialize_with = "wire::objects")]
    pub inputs: Vec<InferInput>,
    /// The outputs wanted; all of the task's when absent.
    #[serde(default, deserialize_with = "wire::optional_objects")]
    pub outputs: Option<Vec<RequestedOutput>>,
}

/// One input tensor.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InferInput {
    pub name: String,
    pub shape: Vec<u64>,
    /// `BYTES` for `text`, `INT64` for token tensors.
    pub datatype: String,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Map<String, Value>>,
    /// Row-major, flat or nested.
    #[schema(value_type = Vec<Object>)]
    pub data: Value,
}

/// An output asked for by name.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestedOutput {
    pub name: String,
}

/// `POST /v2/models/{name}/infer`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct InferAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub model_name: String,
    pub model_version: &'static str,
    pub outputs: Vec<OutputTensor>,
}

/// One output tensor, its data flat in row-major order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputTensor {
    pub name: &'static str,
    /// `FP32` or `BYTES`.
    pub datatype: &'static str,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TensorData {
    Floats(Vec<f32>),
    Strings(Vec<String>),
}

const ROUTE: &str = "/v2/models/{name}/infer";
/// The BYTES input a text model takes instead of token tensors.
const TEXT_INPUT: &str = "text";

/// `GET /v2`: the server's metadata.
#[utoipa::path(get, path = "/v2", tag = "KServe v2", operation_id = "kserve_server", responses((status = 200, description = "server metadata")))]
pub async fn server() -> Json<Value> {
    Json(json!({"name": "modelcrate", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
}

/// `GET /v2/health/live`.
#[utoipa::path(get, path = "/v2/health/live", tag = "KServe v2", operation_id = "kserve_live", responses((status = 200, description = "live")))]
pub async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

/// `GET /v2/health/ready`: 200 once every model is warm, 503 before and while draining.
#[utoipa::path(get, path = "/v2/health/ready", tag = "KServe v2", operation_id = "kserve_ready", responses((status = 200, description = "ready"), (status = 503, description = "warming up or draining", body = ErrorBody)))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match state.lifecycle.phase() {
        Phase::Ready => Ok(Json(json!({"ready": true}))),
        phase => Err(ApiError::Unavailable(format!("the server is {}", phase.as_str()))),
    }
}

/// `GET /v2/models/{name}/ready`.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "KServe v2", operation_id = "kserve_model_ready", params(("name" = String, Path, description = "a served model")),
    responses((status = 200, description = "ready"), (status = 404, description = "unknown model", body = ErrorBody), (status = 503, description = "warming up, draining, or the model still coming", body = ErrorBody)))]
pub async fn model_ready(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    state.engine(&name)?;
    match state.lifecycle.phase() {
        Phase::Ready => Ok(Json(json!({"name": name, "ready": true}))),
        phase => Err(ApiError::Unavailable(format!("the server is {}", phase.as_str()))),
    }
}

fn datatype(dtype: DType) -> &'static str {
    match dtype {
        DType::Float32 => "FP32",
        DType::Int64 => "INT64",
        DType::Int32 => "INT32",
    }
}

fn tensor(name: &str, datatype: &str, shape: &[i64]) -> Value {
    json!({"name": name, "datatype": datatype, "shape": shape})
}

/// `GET /v2/models/{name}`: inputs and outputs from the crate's signature and task.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "KServe v2", operation_id = "kserve_metadata", params(("name" = String, Path, description = "a served model")),
    responses((status = 200, description = "inputs and outputs, from the model's signature"), (status = 404, description = "unknown model", body = ErrorBody)))]
pub async fn metadata(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let engine = state.engine(&name)?;
    let info = engine.model().info();
    let dims = |dims: &[Option<i64>]| -> Vec<i64> { dims.iter().map(|d| d.unwrap_or(-1)).collect() };
    let mut inputs: Vec<Value> = Vec::new();
    // Texts go in as one string each; a question-answering model's pairs and an image–text
    // model's images and labels go through `/models/{name}/predict`, so they list their
    // tensors only.
    let by_tensors_only = matches!(info.task, Task::QuestionAnswering | Task::ZeroShotImageClassification);
    if engine.model().encoder().is_some() && !by_tensors_only {
        inputs.push(tensor(TEXT_INPUT, "BYTES", &[-1]));
    }
    inputs.extend(
        info.signature
            .inputs
            .iter()
            .map(|input| tensor(input.name, datatype(input.dtype), &dims(input.dims))),
    );
    let labels = info.labels.len() as i64;
    let outputs = match info.task {
        Task::TextClassification => vec![
            tensor("logits", "FP32", &[-1, labels]),
            tensor("scores", "FP32", &[-1, labels]),
            tensor("label", "BYTES", &[-1]),
        ],
        Task::FeatureExtraction => {
            vec![tensor(
                "sentence_embedding",
                "FP32",
                &[-1, info.dimension.unwrap_or(0) as i64],
            )]
        }
        _ => info
            .signature
            .outputs
            .iter()
            .map(|output| tensor(output.name, datatype(output.dtype), &dims(output.dims)))
            .collect(),
    };
    Ok(Json(json!({
        "name": info.name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {
            "task": info.task.as_str(),
            "labels": info.labels,
            "max_length": info.max_length,
            "variant": info.variant.name,
            "infer": matches!(info.task, Task::TextClassification | Task::FeatureExtraction),
        },
    })))
}

fn invalid(message: String) -> ApiError {
    ApiError::Validation(message)
}

/// One request input: its name, shape, datatype and flat data.
struct Tensor<'a> {
    /// Where it is in the request: `inputs[1]`.
    place: String,
    name: &'a str,
    shape: Vec<usize>,
    datatype: &'a str,
    data: Vec<&'a Value>,
}

/// Row-major data, nested or flat, as a flat list.
fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        other => out.push(other),
    }
}

fn input(input: &InferInput, index: usize) -> Result<Tensor<'_>, ApiError> {
    let place = format!("inputs[{index}]");
    let shape = input
        .shape
        .iter()
        .map(|&dim| usize::try_from(dim).ok())
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| invalid(format!("`{place}.shape` is too large for this machine")))?;
    let (name, datatype) = (input.name.as_str(), input.datatype.as_str());
    let mut flat = Vec::new();
    flatten(&input.data, &mut flat);
    let elements: usize = shape.iter().product();
    if flat.len() != elements {
        return Err(invalid(format!(
            "`{place}.data` has {} elements, and shape {shape:?} holds {elements}",
            flat.len()
        )));
    }
    Ok(Tensor {
        place,
        name,
        shape,
        datatype,
        data: flat,
    })
}

/// A request's rows: texts, or token id rows (ids and type ids, padding cut off).
enum Rows {
    Texts(Vec<String>),
    Tokens(Vec<Encoding>),
}

fn texts(tensor: &Tensor<'_>, max_inputs: usize) -> Result<Rows, ApiError> {
    if tensor.datatype != "BYTES" || tensor.shape.len() != 1 {
        return Err(invalid(format!(
            "`{}` (input `{TEXT_INPUT}`) must be `datatype` BYTES of `shape` [n], got {:?} of {:?}",
            tensor.place, tensor.datatype, tensor.shape
        )));
    }
    check_rows(tensor.shape[0], max_inputs)?;
    let texts = tensor
        .data
        .iter()
        .enumerate()
        .map(|(i, value)| match value {
            Value::String(text) if !text.trim().is_empty() => Ok(text.clone()),
            Value::String(_) => Err(invalid(format!(
                "`{}.data` element {i} (input `{TEXT_INPUT}`) is empty or only whitespace",
                tensor.place
            ))),
            other => Err(invalid(format!(
                "`{}.data` element {i} (input `{TEXT_INPUT}`) must be a string, got {}",
                tensor.place,
                wire::kind(other)
            ))),
        })
        .collect::<Result<_, _>>()?;
    Ok(Rows::Texts(texts))
}

fn check_rows(rows: usize, max_inputs: usize) -> Result<(), ApiError> {
    if rows == 0 {
        return Err(invalid("`inputs` have no rows: their `shape` starts with 0".into()));
    }
    if rows > max_inputs {
        return Err(ApiError::PayloadTooLarge(format!(
            "the inputs have {rows} rows; at most {max_inputs} are allowed per request (--max-client-batch-size)"
        )));
    }
    Ok(())
}

/// Token tensors as encodings, checked against the model: INT64 `[rows, columns]` each,
/// the same shape, ids inside the vocabulary, masks of ones then zeros.
fn tokens(tensors: &[Tensor<'_>], vocabulary: usize, max_length: usize, max_inputs: usize) -> Result<Rows, ApiError> {
    let find = |name: &str| tensors.iter().find(|t| t.name == name);
    let ids = find("input_ids").ok_or_else(|| {
        invalid("`inputs` holds neither `text` nor `input_ids`: send the texts, or the token tensors".into())
    })?;
    let mask = find("attention_mask")
        .ok_or_else(|| invalid("`inputs` holds `input_ids` without its `attention_mask`".into()))?;
    let types = find("token_type_ids");
    for tensor in [Some(ids), Some(mask), types].into_iter().flatten() {
        if tensor.datatype != "INT64" || tensor.shape.len() != 2 || tensor.shape != ids.shape {
            return Err(invalid(format!(
                "`{}` (input `{}`) must be `datatype` INT64 of `shape` [rows, tokens] as `input_ids`'s {:?}, got {:?} of {:?}",
                tensor.place, tensor.name, ids.shape, tensor.datatype, tensor.shape
            )));
        }
    }
    let (rows, columns) = (ids.shape[0], ids.shape[1]);
    check_rows(rows, max_inputs)?;
    let integer = |tensor: &Tensor<'_>, at: usize| -> Result<i64, ApiError> {
        tensor.data[at].as_i64().ok_or_else(|| {
            invalid(format!(
                "`{}.data` element {at} (input `{}`) must be an integer",
                tensor.place, tensor.name
            ))
        })
    };
    let mut encodings = Vec::with_capacity(rows);
    for row in 0..rows {
        let mut length = 0;
        for column in 0..columns {
            match integer(mask, row * columns + column)? {
                1 if length == column => length += 1,
                0 => {}
                value => {
                    return Err(invalid(format!(
                        "`{}.data` (input `attention_mask`) row {row} must be ones then zeros (right padding), found {value} at {column}",
                        mask.place
                    )));
                }
            }
        }
        if length == 0 || length > max_length {
            return Err(invalid(format!(
                "`{}.data` (input `attention_mask`) row {row} has {length} tokens; the model takes 1 to {max_length}",
                mask.place
            )));
        }
        let mut tokens = Vec::with_capacity(length);
        for column in 0..length {
            let at = row * columns + column;
            let id = integer(ids, at)?;
            let id = u32::try_from(id)
                .ok()
                .filter(|&id| (id as usize) < vocabulary)
                .ok_or_else(|| {
                    invalid(format!(
                        "`{}.data` (input `input_ids`) row {row} column {column} is {id}, outside the vocabulary of {vocabulary}",
                        ids.place
                    ))
                })?;
            let type_id = match types {
                Some(types) => u32::try_from(integer(types, at)?)
                    .ok()
                    .filter(|&t| t <= 1)
                    .ok_or_else(|| {
                        invalid(format!(
                            "`{}.data` (input `token_type_ids`) row {row} column {column} must be 0 or 1",
                            types.place
                        ))
                    })?,
                None => 0,
            };
            tokens.push((id, String::new(), (0, 0), None, type_id));
        }
        encodings.push(tokens.into_iter().collect::<Encoding>());
    }
    Ok(Rows::Tokens(encodings))
}

/// `POST /v2/models/{name}/infer`.
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "KServe v2", operation_id = "kserve_infer", request_body = InferRequest,
    params(("name" = String, Path, description = "a served text classifier or embedding model")),
    responses((status = 200, description = "the outputs asked for", body = InferAnswer)))]
pub async fn infer(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<InferAnswer>), ApiError> {
    let work = async {
        let result = answer(&state, &name, body).await;
        (name.clone(), result)
    };
    state.counted(ROUTE, &name, work).await
}

async fn answer(
    state: &AppState,
    name: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<InferAnswer>), ApiError> {
    let started = Instant::now();
    let infer = state.infer(name)?;
    let body = state.body(body)?;
    let request: InferRequest = wire::parse(&body)?;
    let info = infer.info();
    if !matches!(info.task, Task::TextClassification | Task::FeatureExtraction) {
        return Err(invalid(format!(
            "model `{name}` is a {} model: v2 infer serves text-classification and feature-extraction models; use POST /models/{name}/predict",
            info.task.as_str()
        )));
    }
    let tensors = request
        .inputs
        .iter()
        .enumerate()
        .map(|(i, item)| input(item, i))
        .collect::<Result<Vec<_>, _>>()?;
    let known: Vec<&str> = std::iter::once(TEXT_INPUT)
        .chain(info.signature.inputs.iter().map(|i| i.name))
        .collect();
    if let Some(unknown) = tensors.iter().find(|t| !known.contains(&t.name)) {
        return Err(invalid(format!(
            "`{}.name` is `{}`, an unknown input; model `{name}` takes {known:?}",
            unknown.place, unknown.name
        )));
    }
    let max_inputs = state.limits.max_client_batch_size;
    let rows = match tensors.iter().find(|t| t.name == TEXT_INPUT) {
        Some(text) if tensors.len() == 1 => texts(text, max_inputs)?,
        Some(_) => {
            return Err(invalid(format!(
                "`inputs` holds `{TEXT_INPUT}` and token tensors: send one or the other"
            )));
        }
        None => {
            let vocabulary = infer.model().text_encoder()?.tokenizer().get_vocab_size(true);
            tokens(&tensors, vocabulary, info.max_length, max_inputs)?
        }
    };
    let wanted = requested_outputs(request.outputs.as_deref(), info.task)?;
    let (outputs, timings) = run(&infer, rows, &wanted).await?;
    let answer = InferAnswer {
        id: request.id,
        model_name: info.name.to_string(),
        model_version: "1",
        outputs,
    };
    Ok((state.finish(info.name, &timings, started), Json(answer)))
}

/// The output names asked for (all of the task's when `outputs` is absent).
fn requested_outputs(asked: Option<&[RequestedOutput]>, task: Task) -> Result<Vec<&'static str>, ApiError> {
    let all: &[&'static str] = match task {
        Task::TextClassification => &["logits", "scores", "label"],
        _ => &["sentence_embedding"],
    };
    match asked {
        None => Ok(all.to_vec()),
        Some(asked) => asked
            .iter()
            .enumerate()
            .map(|(index, output)| {
                all.iter().find(|name| **name == output.name).copied().ok_or_else(|| {
                    invalid(format!(
                        "`outputs[{index}].name` is `{}`, an unknown output; this model gives {all:?}",
                        output.name
                    ))
                })
            })
            .collect(),
    }
}

/// Runs the rows through the inference core and shapes the wanted outputs as v2 tensors.
async fn run(infer: &Infer, rows: Rows, wanted: &[&'static str]) -> Result<(Vec<OutputTensor>, Timings), ApiError> {
    let (encodings, took) = match rows {
        // Cut at the model's max length, as the pipeline does.
        Rows::Texts(texts) => infer.encode(texts, Truncate::Always).await?,
        // Checked and padded already: nothing to tokenize.
        Rows::Tokens(encodings) => (encodings, Duration::ZERO),
    };
    let count = encodings.len();
    let matrix = |name: &'static str, rows: &[Vec<f32>]| {
        let width = rows.first().map_or(0, Vec::len);
        OutputTensor {
            name,
            datatype: "FP32",
            shape: vec![count, width],
            data: TensorData::Floats(rows.iter().flatten().copied().collect()),
        }
    };
    match infer.info().task {
        Task::TextClassification => {
            let classified = infer.classify_encoded(encodings, took, None).await?;
            let labels = infer.info().labels;
            let outputs = wanted
                .iter()
                .map(|&name| match name {
                    "logits" => matrix(name, &classified.logits),
                    "scores" => matrix(name, &classified.scores),
                    _ => {
                        let top = classified.scores.iter().map(|row| labels[best(row).id].to_string());
                        OutputTensor {
                            name: "label",
                            datatype: "BYTES",
                            shape: vec![count],
                            data: TensorData::Strings(top.collect()),
                        }
                    }
                })
                .collect();
            Ok((outputs, classified.timings))
        }
        Task::FeatureExtraction => {
            let embedded = infer.embed_encoded(encodings, took, None).await?;
            Ok((
                vec![matrix("sentence_embedding", &embedded.embeddings)],
                embedded.timings,
            ))
        }
        _ => Err(ApiError::Inference("v2 infer reached a model it does not serve".into())),
    }
}
