//! The Hugging Face Inference API: `POST /models/{name}/predict` takes what the
//! `transformers` pipeline of the model's task takes (`{"inputs": …, "parameters": …}`,
//! or an image as raw bytes, multipart or base64 JSON) and answers in its shapes; an
//! image–text model's image tower answers `POST /models/{name}/image-embeddings` in the
//! feature-extraction shape (one vector for one image, a list of vectors for a list).

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use modelcrate_core::pipeline::{Classification, Entities, ObjectDetections, QuestionAnswers, ZeroShotAnswer};
use modelcrate_core::{Infer, Timings, TopK, Truncate};
use modelcrate_runtime::image_classification::DEFAULT_TOP_K;
use modelcrate_runtime::{ModelInfo, Task};
use serde::Serialize;

use crate::error::ApiError;
use crate::image_request::{ImageRequest, media_type};
use crate::request::{
    AnswerRequest, ClassifyParameters, ClassifyRequest, DetectionParameters, EmbedRequest, EntitiesRequest,
    NoParameters, ZeroShotParameters,
};
use crate::state::AppState;
use crate::wire;
use modelcrate_core::pipeline;

/// What the Inference API answers, by task: the pipeline's shapes (see
/// `modelcrate_core::pipeline`); an embedding model answers one vector for one text, a
/// list of vectors for a list.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Prediction {
    Labels(Classification),
    Entities(Entities),
    Answers(QuestionAnswers),
    Objects(ObjectDetections),
    Candidates(ZeroShotAnswer),
    Embedding(Vec<f32>),
    Embeddings(Vec<Vec<f32>>),
}

/// The route label of the Inference API's prediction route in the metrics.
const PREDICT_ROUTE: &str = "/models/{name}/predict";
/// The route label of an image–text model's image embeddings route in the metrics.
const IMAGE_EMBEDDINGS_ROUTE: &str = "/models/{name}/image-embeddings";

/// An image–text model's image embeddings: one vector for one image, a list of vectors
/// for a list (raw bytes, multipart or base64 JSON, as a prediction's images).
pub async fn image_embeddings(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Prediction>), ApiError> {
    let work = async {
        let result = async {
            let started = Instant::now();
            let infer = state.infer(&name)?;
            let body = state.body(body)?;
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let request: ImageRequest<NoParameters> =
                ImageRequest::parse(content_type, query.as_deref(), body, state.limits.max_client_batch_size).await?;
            let embedded = infer.embed_images(request.images).await?;
            let mut embeddings = embedded.embeddings;
            let answer = if request.single && embeddings.len() == 1 {
                Prediction::Embedding(embeddings.remove(0))
            } else {
                Prediction::Embeddings(embeddings)
            };
            Ok((
                state.finish(infer.info().name, &embedded.timings, started),
                Json(answer),
            ))
        }
        .await;
        (name.clone(), result)
    };
    state.counted(IMAGE_EMBEDDINGS_ROUTE, &name, work).await
}

/// A prediction in the Inference API's shapes.
pub async fn predict(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Prediction>), ApiError> {
    let work = async {
        let result = answer(&state, &name, query, headers, body).await;
        (name.clone(), result)
    };
    state.counted(PREDICT_ROUTE, &name, work).await
}

async fn answer(
    state: &AppState,
    name: &str,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Prediction>), ApiError> {
    let started = Instant::now();
    let infer = state.infer(name)?;
    let body = state.body(body)?;
    let max_inputs = state.limits.max_client_batch_size;
    let model_name = infer.info().name;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    match infer.info().task {
        Task::ImageClassification => {
            let request: ImageRequest<ClassifyParameters> =
                ImageRequest::parse(content_type, query.as_deref(), body, max_inputs).await?;
            let function = request.parameters.function();
            let classified = infer.classify_images(request.images, function).await?;
            // The image pipeline's `top_k` is 5 when absent (the text pipeline's is the best label).
            let top_k = match request.parameters.top_k() {
                TopK::Absent => TopK::K(DEFAULT_TOP_K),
                asked => asked,
            };
            let answer = pipeline::classification(infer.info().labels, &classified.scores, top_k, request.single);
            return Ok((
                state.finish(model_name, &classified.timings, started),
                Json(Prediction::Labels(answer)),
            ));
        }
        Task::ObjectDetection => {
            let request: ImageRequest<DetectionParameters> =
                ImageRequest::parse(content_type, query.as_deref(), body, max_inputs).await?;
            let options = request.parameters.options()?;
            let detected = infer.detect(request.images, options).await?;
            let answer = pipeline::object_detections(infer.info().labels, &detected.detections, request.single);
            return Ok((
                state.finish(model_name, &detected.timings, started),
                Json(Prediction::Objects(answer)),
            ));
        }
        Task::ZeroShotImageClassification => {
            let request: ImageRequest<ZeroShotParameters> =
                ImageRequest::parse(content_type, query.as_deref(), body, max_inputs).await?;
            let labels = request.parameters.labels()?;
            let answered = infer
                .zero_shot(request.images, labels.clone(), request.parameters.template())
                .await?;
            let answer = pipeline::zero_shot(&labels, &answered.scores, request.single);
            return Ok((
                state.finish(model_name, &answered.image_timings, started),
                Json(Prediction::Candidates(answer)),
            ));
        }
        _ => {}
    }
    require_json(&headers, infer.info())?;
    let (answer, timings) = texts(&infer, &body, max_inputs).await?;
    Ok((state.finish(model_name, &timings, started), Json(answer)))
}

/// A text model's answer, as its task's pipeline gives it.
async fn texts(infer: &Infer, body: &[u8], max_inputs: usize) -> Result<(Prediction, Timings), ApiError> {
    Ok(match infer.info().task {
        Task::TextClassification => {
            let request: ClassifyRequest = wire::parse(body)?;
            let parameters = request.parameters();
            let inputs = request.inputs.at_most(max_inputs, "inputs", "text")?;
            let single = inputs.is_one();
            let classified = infer
                .classify(inputs.into_texts(), Truncate::Always, parameters.function())
                .await?;
            let answer = pipeline::classification(infer.info().labels, &classified.scores, parameters.top_k(), single);
            (Prediction::Labels(answer), classified.timings)
        }
        Task::FeatureExtraction => {
            let request: EmbedRequest = wire::parse(body)?;
            let normalize = request.normalize();
            let inputs = request.inputs.at_most(max_inputs, "inputs", "text")?;
            let single = inputs.is_one();
            let embedded = infer.embed(inputs.into_texts(), Truncate::Always, normalize).await?;
            // As the Inference API: one vector for one text, a list of vectors for a list.
            let mut embeddings = embedded.embeddings;
            let answer = if single && embeddings.len() == 1 {
                Prediction::Embedding(embeddings.remove(0))
            } else {
                Prediction::Embeddings(embeddings)
            };
            (answer, embedded.timings)
        }
        Task::TokenClassification => {
            let request: EntitiesRequest = wire::parse(body)?;
            let (strategy, ignore_labels) = (request.strategy(), request.ignore_labels());
            let inputs = request.inputs.at_most(max_inputs, "inputs", "text")?;
            let single = inputs.is_one();
            let found = infer.entities(inputs.into_texts(), strategy, ignore_labels).await?;
            let answer = pipeline::entity_lists(&found.entities, single);
            (Prediction::Entities(answer), found.timings)
        }
        Task::QuestionAnswering => {
            let request: AnswerRequest = wire::parse(body)?;
            let options = request.options();
            wire::batch_size(request.inputs.count(), "inputs", max_inputs, "question")?;
            let answered = infer.answer(request.inputs.into_pairs(), options).await?;
            let answer = pipeline::question_answers(&answered.answers);
            (Prediction::Answers(answer), answered.timings)
        }
        Task::ImageClassification | Task::ObjectDetection | Task::ZeroShotImageClassification => {
            return Err(ApiError::Inference(
                "an image model's request reached the text path".into(),
            ));
        }
    })
}

/// A text model takes JSON; an image or a form sent to it is named as such.
fn require_json(headers: &HeaderMap, info: &ModelInfo) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let media = content_type.map(media_type);
    match (content_type, media.as_deref()) {
        (_, Some("application/json")) => Ok(()),
        (Some(value), Some(media)) if media.starts_with("image/") || media == "multipart/form-data" => {
            Err(ApiError::UnsupportedMediaType(format!(
                "{value}: model `{}` is a {} model; it takes texts as application/json, not images",
                info.name,
                info.task.as_str()
            )))
        }
        (Some(value), _) => Err(ApiError::UnsupportedMediaType(value.to_string())),
        (None, _) => Err(ApiError::UnsupportedMediaType("none".into())),
    }
}
