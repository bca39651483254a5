//! HTTP routes. Handlers are thin: parse and validate, tokenize texts or decode images,
//! hand the rows to the model's batching engine, and shape its outputs as the
//! `transformers` pipeline does.
//! Every answer says where its time went (`x-tokenization-time` — `x-preparation-time` for
//! images —, `x-queue-time`, `x-inference-time`, `x-total-time` in milliseconds,
//! `x-batch-size`: rows in the batch it ran in), and every
//! response carries its `x-request-id` (see `request_log`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use modelcrate_runtime::classification::ClassificationFunction;
use modelcrate_runtime::embedding::l2_normalize;
use modelcrate_runtime::{Answered, Engine, ImageError, LoadedModel, RowOutput, Rows, TensorSpec};
use serde_json::{Map, Value, json};
use tokenizers::Encoding;

use crate::error::ApiError;
use crate::image_request::{ImageRequest, media_type};
use crate::lifecycle::{Lifecycle, Phase};
use crate::metrics::{Metrics, ModelGauge, Timing};
use crate::models;
use crate::reload::Reloader;
use crate::request::{ClassifyRequest, EmbedRequest, EntitiesRequest, Inputs, TopK};
use crate::served::{Generation, Outcome, Served};
use crate::{admin, kserve, openai, openapi, request_log, tei};
use crate::{pipeline_json, request};

/// Limits a request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_client_batch_size: usize,
    pub max_body_bytes: usize,
    /// Largest image, in pixels, decoded for an image model.
    pub max_image_pixels: u64,
    /// How long a request may wait for its answer before it gets a 504.
    pub request_timeout: Duration,
    /// Whether the TEI and OpenAI routes truncate a text longer than the model's max
    /// length when the request does not say (TEI's `--auto-truncate`); otherwise they
    /// refuse it with 413. The Inference API route always truncates, as the pipeline does.
    pub auto_truncate: bool,
}

#[derive(Clone)]
pub struct AppState {
    /// Each served model behind its batching engine, by name; a hot reload swaps one.
    pub models: Arc<Served>,
    /// How a model is reloaded, and who may ask.
    pub reloader: Arc<Reloader>,
    pub limits: Limits,
    /// Warming up, ready or draining, and the predictions in flight.
    pub lifecycle: Arc<Lifecycle>,
    pub metrics: Arc<Metrics>,
}

/// One route: a path, the method it answers and its handler. [`app`] serves the table of
/// [`endpoints`], and the OpenAPI test reads the same table, so a route added without its
/// description in `/openapi.json` fails a test.
pub struct Endpoint {
    pub path: &'static str,
    pub method: Method,
    handler: MethodRouter<AppState>,
}

fn get_at<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Endpoint {
    Endpoint {
        path,
        method: Method::GET,
        handler: get(handler),
    }
}

fn post_at<H: Handler<T, AppState>, T: 'static>(path: &'static str, handler: H) -> Endpoint {
    Endpoint {
        path,
        method: Method::POST,
        handler: post(handler),
    }
}

/// Every route the server answers.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        get_at("/health", health),
        get_at("/health/live", live),
        get_at("/health/ready", ready),
        get_at("/models", list_models),
        get_at("/metrics", metrics),
        post_at("/models/{name}/predict", predict),
        post_at("/v1/embeddings", openai::embeddings),
        get_at("/v1/models", openai::models),
        post_at("/embed", tei::embed),
        post_at("/predict", tei::predict),
        post_at("/tokenize", tei::tokenize),
        get_at("/info", tei::info),
        get_at("/openapi.json", openapi::document),
        get_at("/docs", openapi::docs),
        get_at("/docs/swagger-ui-bundle.js", openapi::swagger_js),
        get_at("/docs/swagger-ui.css", openapi::swagger_css),
        get_at("/v2", kserve::server),
        get_at("/v2/health/live", kserve::live),
        get_at("/v2/health/ready", kserve::ready),
        get_at("/v2/models/{name}", kserve::metadata),
        get_at("/v2/models/{name}/ready", kserve::model_ready),
        post_at("/v2/models/{name}/infer", kserve::infer),
        post_at("/admin/models/{name}/reload", admin::reload),
    ]
}

pub fn app(state: AppState) -> Router {
    let body_limit = state.limits.max_body_bytes;
    endpoints()
        .into_iter()
        .fold(Router::new(), |router, endpoint| {
            router.route(endpoint.path, endpoint.handler)
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(request_log::with_request_id))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "phase": state.lifecycle.phase().as_str(),
        "models": state.models.len(),
        "in_flight": state.lifecycle.in_flight(),
    }))
}

/// Prometheus metrics, in the text exposition format.
async fn metrics(State(state): State<AppState>) -> (HeaderMap, String) {
    let engines: Vec<(Arc<Engine>, Generation)> = state
        .models
        .slots()
        .filter_map(|(_, slot)| slot.engine().map(|engine| (engine, slot.generation())))
        .collect();
    let gauges: Vec<ModelGauge> = engines
        .iter()
        .map(|(engine, generation)| {
            let info = engine.model().info();
            ModelGauge {
                model: info.name,
                task: info.task.as_str(),
                variant: &info.variant.name,
                kind: info.variant.kind.as_str(),
                waiting: engine.waiting(),
                generation: generation.number,
                reload_refused: generation
                    .last_attempt
                    .as_ref()
                    .is_some_and(|attempt| attempt.outcome == Outcome::Refused),
            }
        })
        .collect();
    let text = state
        .metrics
        .render(&gauges, state.lifecycle.in_flight(), state.lifecycle.phase().as_str());
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    (headers, text)
}

/// Liveness: the process answers.
async fn live() -> Json<Value> {
    Json(json!({"status": "live"}))
}

/// Readiness: 200 once every loaded model has warmed up and at least one serves, 503
/// before and while draining. The body names the models still coming (`--wait-for-models`).
async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let coming = state.models.coming();
    match state.lifecycle.phase() {
        Phase::Ready if coming.len() == state.models.len() => Err(ApiError::Unavailable(format!(
            "no model serves yet; still coming: {}",
            coming.join(", ")
        ))),
        Phase::Ready => Ok(Json(json!({
            "status": "ready",
            "models": state.models.len() - coming.len(),
            "coming": coming,
        }))),
        Phase::WarmingUp => Err(ApiError::Unavailable("the models are warming up".into())),
        Phase::Draining => Err(ApiError::Unavailable("the server is shutting down".into())),
    }
}

async fn list_models(State(state): State<AppState>) -> Json<Value> {
    let models: Vec<Value> = state
        .models
        .engines()
        .iter()
        .map(|engine| {
            let info = engine.model().info();
            let batching = engine.options();
            json!({
                "name": info.name,
                "task": info.task.as_str(),
                "labels": info.labels,
                "problem_type": info.problem_type.map(|p| p.as_str()),
                "dimension": info.dimension,
                "image": info.image.map(|image| json!({
                    "resize_shortest_edge": image.resize_shortest,
                    "crop_size": image.crop,
                    "image_mean": image.mean,
                    "image_std": image.std,
                    "max_pixels": state.limits.max_image_pixels,
                })),
                "signature": {
                    "inputs": tensors(info.signature.inputs),
                    "outputs": tensors(info.signature.outputs),
                },
                // A SetFit classifier's second session, run on the body's embeddings.
                "head_signature": info.head.map(|head| json!({
                    "inputs": tensors(head.inputs),
                    "outputs": tensors(head.outputs),
                })),
                "max_length": info.max_length,
                // name, file, kind, and why it serves
                "variant": info.variant,
                "sessions": info.sessions,
                // the serving policy (measured, or the flags'), as it runs
                "layout": engine.layout().describe(),
                "max_client_batch_size": state.limits.max_client_batch_size,
                "batching": {
                    "max_batch_size": batching.max_batch_size,
                    "max_batch_tokens": batching.max_batch_tokens,
                    "merge": batching.merge.describe(),
                    "merge_steps": batching.merge.steps,
                    "max_queue_delay_ms": batching.max_queue_delay.as_secs_f64() * 1e3,
                    "queue_capacity": batching.queue_capacity,
                    "workers": engine.workers(),
                    "waiting": engine.waiting(),
                },
                "request_timeout_ms": state.limits.request_timeout.as_millis(),
                // generation, serving_since, last_reload (see `reload`)
                "reload": state.models.describe(info.name),
                "state": "serving",
            })
        })
        .collect();
    // Models still coming have no engine yet: their name, task and last load attempt.
    let coming = state.models.coming().into_iter().map(|name| {
        json!({
            "name": name,
            "task": models::entry(name).map(|entry| entry.task.as_str()).ok(),
            "state": "coming",
            "reload": state.models.describe(name),
        })
    });
    Json(Value::Array(models.into_iter().chain(coming).collect()))
}

/// Tensors as `/models` lists them; `null` marks a dynamic dimension.
fn tensors(specs: &[TensorSpec]) -> Vec<Value> {
    specs
        .iter()
        .map(|t| json!({"name": t.name, "dtype": t.dtype.as_str(), "dims": t.dims}))
        .collect()
}

/// A text model takes JSON; an image or a form sent to it is named as such.
fn require_json(headers: &HeaderMap, model: &LoadedModel) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let media = content_type.map(media_type);
    match (content_type, media.as_deref()) {
        (_, Some("application/json")) => Ok(()),
        (Some(value), Some(media)) if media.starts_with("image/") || media == "multipart/form-data" => {
            Err(ApiError::UnsupportedMediaType(format!(
                "{value}: model `{}` is a {} model; it takes texts as application/json, not images",
                model.info().name,
                model.info().task.as_str()
            )))
        }
        (Some(value), _) => Err(ApiError::UnsupportedMediaType(value.to_string())),
        (None, _) => Err(ApiError::UnsupportedMediaType("none".into())),
    }
}

/// The rows of an answer as the outputs its task yields; anything else is a bug.
fn rows_of<'a, T>(answered: &'a Answered, pick: impl Fn(&'a RowOutput) -> Option<T>) -> Result<Vec<T>, ApiError> {
    answered
        .rows
        .iter()
        .map(|row| pick(row).ok_or_else(|| ApiError::Inference("the engine answered another task's output".into())))
        .collect()
}

/// The route label of the Inference API's prediction route in the metrics.
const PREDICT_ROUTE: &str = "/models/{name}/predict";

/// A prediction in the Inference API's shapes.
async fn predict(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let work = async {
        let result = answer_prediction(&state, &name, query, headers, body).await;
        (name.clone(), result)
    };
    state.counted(PREDICT_ROUTE, &name, work).await
}

impl AppState {
    /// Runs one prediction as every protocol's route does: refused with 503 while the
    /// server drains, counted in flight until answered (a drain waits for it), and counted
    /// in the metrics by the model `work` names (`model`, from the path, when refused
    /// before it ran), the route, the status and the error kind.
    pub(crate) async fn counted<T>(
        &self,
        route: &'static str,
        model: &str,
        work: impl Future<Output = (String, Result<T, ApiError>)>,
    ) -> Result<T, ApiError> {
        // Counted in before the phase is read: a drain either sees this request or it is refused.
        let in_flight = self.lifecycle.enter();
        let (model, result) = if self.lifecycle.phase() == Phase::Draining {
            let refused = ApiError::Unavailable(
                "the server is shutting down and takes no new requests; retry on another instance".into(),
            );
            (model.to_string(), Err(refused))
        } else {
            work.await
        };
        drop(in_flight);
        let label = if self.models.contains(&model) {
            model.as_str()
        } else {
            "_unknown"
        };
        match &result {
            Ok(_) => self.metrics.request(label, route, 200, ""),
            Err(error) => self
                .metrics
                .request(label, route, error.status().as_u16(), error.kind()),
        }
        result
    }

    /// A route whose body is a JSON object naming its model in `model` (OpenAI, TEI): the
    /// object, with fields outside `known` refused, is given to `answer`, and the request
    /// is counted (see [`AppState::counted`]) under the model the body names.
    pub(crate) async fn json_route<T>(
        &self,
        route: &'static str,
        body: Result<Bytes, BytesRejection>,
        known: &[&str],
        answer: impl AsyncFnOnce(Map<String, Value>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let work = async {
            let object = match self.body(body).and_then(|body| request::object(&body)) {
                Ok(object) => object,
                Err(error) => return (String::new(), Err(error)),
            };
            let model = object
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let result = match request::refuse_unknown(&object, "", known) {
                Ok(()) => answer(object).await,
                Err(error) => Err(error),
            };
            (model, result)
        };
        self.counted(route, "", work).await
    }

    /// The engine of a served model; 503 (with Retry-After) for one still coming, 404 for
    /// a name not served.
    pub(crate) fn engine(&self, name: &str) -> Result<Arc<Engine>, ApiError> {
        match self.models.slot(name) {
            Some(slot) => slot.engine().ok_or_else(|| {
                ApiError::Unavailable(format!(
                    "model `{name}` is still coming: the server waits for its pipeline to finish (GET /models says when it serves)"
                ))
            }),
            None => Err(ApiError::ModelNotFound(name.to_string())),
        }
    }

    /// The request body, or 413 when it was over `--max-body-bytes`.
    pub(crate) fn body(&self, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
        body.map_err(|rejection| {
            ApiError::PayloadTooLarge(format!(
                "the body is over {} bytes (--max-body-bytes): {}",
                self.limits.max_body_bytes,
                rejection.body_text()
            ))
        })
    }
}

async fn answer_prediction(
    state: &AppState,
    name: &str,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let started = Instant::now();
    let engine = state.engine(name)?;
    let body = state.body(body)?;
    if let LoadedModel::ImageClassification(_) = engine.model().as_ref() {
        let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        let request =
            ImageRequest::parse(content_type, query.as_deref(), body, state.limits.max_client_batch_size).await?;
        return classify_images(state, engine, request, started).await;
    }
    require_json(&headers, engine.model())?;
    let model_name = engine.model().info().name;
    let Limits {
        max_client_batch_size: max_inputs,
        request_timeout: timeout,
        ..
    } = state.limits;
    // Parsing and post-processing are cheap; tokenization runs off the async runtime,
    // and the engine's answer is awaited: no thread waits for it.
    let model = engine.model();
    let (answer, answered) = match model.as_ref() {
        LoadedModel::TextClassification(classifier) => {
            let request = ClassifyRequest::parse(&body, max_inputs)?;
            let (encodings, took) = encode_off_runtime(&engine, &request.inputs.texts()).await?;
            let (logits, answered) = logits_of_texts(&engine, encodings, took, timeout).await?;
            let function = request.function.unwrap_or_else(|| classifier.default_function());
            let scores: Vec<Vec<f32>> = logits.iter().map(|row| function.apply(row)).collect();
            let single = matches!(request.inputs, Inputs::One(_));
            let answer = pipeline_json::answer(classifier.info().labels, &scores, request.top_k, single);
            (answer, answered)
        }
        LoadedModel::FeatureExtraction(embedder) => {
            let request = EmbedRequest::parse(&body, max_inputs)?;
            let normalize = request.normalize.unwrap_or_else(|| embedder.normalizes());
            let (encodings, took) = encode_off_runtime(&engine, &request.inputs.texts()).await?;
            let (embeddings, answered) = embeddings_of_texts(&engine, encodings, took, normalize, timeout).await?;
            // As the Inference API: one vector for one text, a list of vectors for a list.
            let answer = match (&request.inputs, embeddings.as_slice()) {
                (Inputs::One(_), [embedding]) => json!(embedding),
                _ => json!(embeddings),
            };
            (answer, answered)
        }
        LoadedModel::TokenClassification(tagger) => {
            let request = EntitiesRequest::parse(&body, max_inputs)?;
            let texts = request.inputs.texts();
            let (encodings, took) = encode_off_runtime(&engine, &texts).await?;
            let answered = infer(&engine, Rows::Texts(encodings), took, timeout).await?;
            let ignore: Option<Vec<&str>> = request
                .ignore_labels
                .as_ref()
                .map(|labels| labels.iter().map(String::as_str).collect());
            let logits = rows_of(&answered, |row| match row {
                RowOutput::TokenLogits(logits) => Some(logits),
                _ => None,
            })?;
            let found = texts
                .iter()
                .zip(answered.inputs.encodings())
                .zip(logits)
                .map(|((text, encoding), logits)| {
                    tagger.entities_of(text, encoding, logits, request.strategy, ignore.as_deref())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let answer = pipeline_json::entities(&found, matches!(request.inputs, Inputs::One(_)));
            (answer, answered)
        }
        LoadedModel::ImageClassification(_) => {
            return Err(ApiError::Inference(
                "an image model's request reached the text path".into(),
            ));
        }
    };
    Ok((state.finish(model_name, &answered, started), Json(answer)))
}

/// `encodings` as they are when truncation is allowed (`truncate`, or the server's
/// `--auto-truncate` when the request does not say); otherwise 413 naming the first text
/// longer than the model's `max_length` tokens. `field` names the texts in the message.
pub(crate) fn truncation_checked(
    encodings: Vec<Encoding>,
    truncate: Option<bool>,
    limits: &Limits,
    max_length: usize,
    field: &str,
) -> Result<Vec<Encoding>, ApiError> {
    if truncate.unwrap_or(limits.auto_truncate) {
        return Ok(encodings);
    }
    // The tokenizer truncates at `max_length` and keeps the rest as overflow.
    match encodings
        .iter()
        .position(|encoding| !encoding.get_overflowing().is_empty())
    {
        None => Ok(encodings),
        Some(index) => {
            let which = if encodings.len() == 1 {
                format!("`{field}`")
            } else {
                format!("`{field}[{index}]`")
            };
            Err(ApiError::PayloadTooLarge(format!(
                "{which} is longer than the model's {max_length} tokens; send `truncate: true` to cut it there, or start the server with --auto-truncate"
            )))
        }
    }
}

/// `texts` tokenized for `model`, and how long it took (`x-tokenization-time`).
pub(crate) fn encode_timed(model: &LoadedModel, texts: &[&str]) -> Result<(Vec<Encoding>, Duration), ApiError> {
    let started = Instant::now();
    let encodings = model.encode(texts)?;
    Ok((encodings, started.elapsed()))
}

/// [`encode_timed`] for the engine's model on a blocking thread: tokenizing a batch of
/// long texts takes milliseconds, which the async runtime's threads must not spend.
pub(crate) async fn encode_off_runtime(
    engine: &Arc<Engine>,
    texts: &[&str],
) -> Result<(Vec<Encoding>, Duration), ApiError> {
    let engine = Arc::clone(engine);
    let texts: Vec<String> = texts.iter().map(|text| (*text).to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        encode_timed(engine.model(), &texts)
    })
    .await
    .map_err(|error| ApiError::Inference(error.to_string()))?
}

/// Runs `rows` in the engine's batches and awaits the answer, holding no thread while it
/// waits; after `timeout` the request gets 504 (and the engine drops the job unrun if it
/// has not started). `preparation` is what making the rows took.
pub(crate) async fn infer(
    engine: &Engine,
    rows: Rows,
    preparation: Duration,
    timeout: Duration,
) -> Result<Answered, ApiError> {
    let pending = engine.submit(rows, preparation, timeout)?;
    match tokio::time::timeout(timeout, pending.answer()).await {
        Ok(answered) => Ok(answered?),
        Err(_) => Err(ApiError::Timeout(timeout)),
    }
}

/// One logit row per text, run in the engine's batches; `tokenization` is what making
/// `encodings` took.
pub(crate) async fn logits_of_texts(
    engine: &Engine,
    encodings: Vec<Encoding>,
    tokenization: Duration,
    timeout: Duration,
) -> Result<(Vec<Vec<f32>>, Answered), ApiError> {
    let answered = infer(engine, Rows::Texts(encodings), tokenization, timeout).await?;
    let logits = rows_of(&answered, |row| match row {
        RowOutput::Logits(logits) => Some(logits.clone()),
        _ => None,
    })?;
    Ok((logits, answered))
}

/// One embedding per text, L2-normalised when `normalize`, run in the engine's batches;
/// `tokenization` is what making `encodings` took.
pub(crate) async fn embeddings_of_texts(
    engine: &Engine,
    encodings: Vec<Encoding>,
    tokenization: Duration,
    normalize: bool,
    timeout: Duration,
) -> Result<(Vec<Vec<f32>>, Answered), ApiError> {
    let answered = infer(engine, Rows::Texts(encodings), tokenization, timeout).await?;
    let embeddings = rows_of(&answered, |row| match row {
        RowOutput::Pooled(pooled) => {
            let mut vector = pooled.clone();
            if normalize {
                l2_normalize(&mut vector);
            }
            Some(vector)
        }
        _ => None,
    })?;
    Ok((embeddings, answered))
}

/// Decodes and prepares each image off the async runtime, runs them in the engine's
/// batches, and answers as the image-classification pipeline does.
async fn classify_images(
    state: &AppState,
    engine: Arc<Engine>,
    request: ImageRequest,
    started: Instant,
) -> Result<(HeaderMap, Json<Value>), ApiError> {
    let Limits {
        max_image_pixels,
        request_timeout: timeout,
        ..
    } = state.limits;
    let model_name = engine.model().info().name;
    let LoadedModel::ImageClassification(_) = engine.model().as_ref() else {
        return Err(ApiError::Inference(
            "a text model's request reached the image path".into(),
        ));
    };
    let preparing_engine = Arc::clone(&engine);
    let images = request.images;
    // Decoding and resizing take milliseconds per image: off the async runtime.
    let (prepared, preparation) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let LoadedModel::ImageClassification(classifier) = preparing_engine.model().as_ref() else {
            return Err(ApiError::Inference(
                "a text model's request reached the image path".into(),
            ));
        };
        let count = images.len();
        let preparing = Instant::now();
        let prepared = images
            .iter()
            .enumerate()
            .map(|(index, bytes)| {
                classifier.prepare(bytes, max_image_pixels).map_err(|error| {
                    let which = if count == 1 {
                        String::new()
                    } else {
                        format!("image {index}: ")
                    };
                    match error {
                        ImageError::TooLarge { .. } => ApiError::PayloadTooLarge(format!("{which}{error}")),
                        _ => ApiError::Validation(format!("{which}{error}")),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((prepared, preparing.elapsed()))
    })
    .await
    .map_err(|error| ApiError::Inference(error.to_string()))??;
    let answered = infer(&engine, Rows::Images(prepared), preparation, timeout).await?;
    let function = request.function.unwrap_or(ClassificationFunction::Softmax);
    let scores: Vec<Vec<f32>> = rows_of(&answered, |row| match row {
        RowOutput::Logits(logits) => Some(function.apply(logits)),
        _ => None,
    })?;
    let top_k = request.top_k.map_or(TopK::All, TopK::K);
    let answer = pipeline_json::answer(engine.model().info().labels, &scores, top_k, request.single);
    Ok((state.finish(model_name, &answered, started), Json(answer)))
}

impl AppState {
    /// Records an answer's timing and batch in the metrics; returns its timing headers.
    pub(crate) fn finish(&self, model: &str, answered: &Answered, started: Instant) -> HeaderMap {
        let total = started.elapsed();
        self.metrics.answered(
            model,
            Timing {
                total,
                preparation: answered.preparation_time,
                queue: answered.queue_time,
                inference: answered.inference_time,
                batch_rows: answered.batch_rows,
            },
        );
        timing_headers(answered, total)
    }
}

fn timing_headers(answered: &Answered, total: Duration) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let milliseconds = |duration: Duration| HeaderValue::from(duration.as_millis().min(u128::from(u64::MAX)) as u64);
    // TEI's name for texts; an image model's decoding and resizing has its own.
    let preparation = match answered.inputs {
        Rows::Images(_) => "x-preparation-time",
        Rows::Texts(_) => "x-tokenization-time",
    };
    headers.insert(preparation, milliseconds(answered.preparation_time));
    headers.insert("x-queue-time", milliseconds(answered.queue_time));
    headers.insert("x-inference-time", milliseconds(answered.inference_time));
    headers.insert("x-total-time", milliseconds(total));
    headers.insert("x-batch-size", HeaderValue::from(answered.batch_rows as u64));
    headers
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
