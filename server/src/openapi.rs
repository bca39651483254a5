//! `GET /openapi.json`: an OpenAPI 3.1 description of this server as it runs, and
//! `GET /docs`, Swagger UI on it, from assets vendored in `server/assets/swagger-ui/`.
//!
//! The routes and their request and answer schemas are derived by `utoipa` from the
//! handlers' `#[utoipa::path]` annotations and the serde types the handlers read and
//! write; at each request the served models' typed facts are added: a prediction route per
//! model with its task's request and its answer narrowed to its labels (as enums), its
//! embedding length or its entity types, and the served models' names where a route
//! takes one. The protocol tests check the document against `routes::endpoints()`, the
//! table the router is built from, both ways, and the test command validates it with an
//! OpenAPI validator.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Html;
use modelcrate_runtime::token_classification::entity_types;
use modelcrate_runtime::{ModelInfo, Task};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::openai::OpenAiErrorBody;
use crate::request::{
    AnswerParameters, AnswerRequest, ClassifyRequest, DetectionParameters, DetectionRequest, EmbedRequest,
    EntitiesRequest, ImageEmbedRequest, ImagesRequest, QuestionContext, ZeroShotParameters, ZeroShotRequest,
};
use crate::state::AppState;
use crate::tei::TeiErrorBody;
use crate::{admin, card, kserve, openai, status, tei};
use modelcrate_core::pipeline::{
    CandidateScore, Classification, DetectedObject, Entities, EntityAnswer, EntityGroup, LabelScore, PixelBox,
    QuestionAnswer, QuestionAnswers, SpanAnswer, TextLabels, TokenEntity,
};

/// The routes every server has, whatever it serves.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Modelcrate",
        description = "Fine-tuned Hugging Face models served from Rust: the Inference API's shapes, OpenAI embeddings, TEI and KServe v2."
    ),
    paths(
        status::health,
        status::live,
        status::ready,
        status::list_models,
        card::card,
        status::metrics,
        openai::embeddings,
        openai::models,
        tei::embed,
        tei::predict,
        tei::tokenize,
        tei::info,
        kserve::server,
        kserve::live,
        kserve::ready,
        kserve::metadata,
        kserve::model_ready,
        kserve::infer,
        admin::reload,
    ),
    components(schemas(
        ErrorBody,
        OpenAiErrorBody,
        TeiErrorBody,
        ClassifyRequest,
        EmbedRequest,
        EntitiesRequest,
        ImagesRequest,
        DetectionRequest,
        DetectionParameters,
        DetectedObject,
        PixelBox,
        ZeroShotRequest,
        ZeroShotParameters,
        ImageEmbedRequest,
        CandidateScore,
        LabelScore,
        TextLabels,
        Classification,
        EntityGroup,
        TokenEntity,
        EntityAnswer,
        Entities,
        AnswerRequest,
        AnswerParameters,
        QuestionContext,
        SpanAnswer,
        QuestionAnswer,
        QuestionAnswers,
    ))
)]
struct Routes;

const SWAGGER_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");

/// `GET /docs`: Swagger UI on `/openapi.json`.
pub async fn docs() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Modelcrate API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body>
</html>
"##,
    )
}

fn asset(bytes: &'static [u8], media: &'static str) -> (HeaderMap, &'static [u8]) {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    (headers, bytes)
}

pub async fn swagger_js() -> (HeaderMap, &'static [u8]) {
    asset(SWAGGER_JS, "application/javascript")
}

pub async fn swagger_css() -> (HeaderMap, &'static [u8]) {
    asset(SWAGGER_CSS, "text/css")
}

/// `GET /openapi.json`.
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    let engines = state.models.engines();
    let models: Vec<&ModelInfo> = engines.iter().map(|engine| engine.model().info()).collect();
    Json(described(&models))
}

/// The document for a server serving `models`.
pub fn described(models: &[&ModelInfo]) -> Value {
    let mut document = serde_json::to_value(Routes::openapi()).unwrap_or_else(|_| json!({}));
    let names = |served: &dyn Fn(&ModelInfo) -> bool| -> Vec<&str> {
        models
            .iter()
            .filter(|info| served(info))
            .map(|info| info.name)
            .collect()
    };
    let of_task = |task: Task| move |info: &ModelInfo| info.task == task;
    // The models whose texts `/v1/embeddings` embeds: sentence-embedding models and the
    // text towers of image–text models.
    let text_embedders = names(&ModelInfo::embeds_texts);
    // The models `/tokenize` tokenizes for: every model that reads text.
    let text_models = names(&|info: &ModelInfo| !info.task.is_image() || info.embeds_texts());
    let all = names(&|_: &ModelInfo| true);
    if let Some(paths) = document["paths"].as_object_mut() {
        for info in models {
            paths.insert(format!("/models/{}/predict", info.name), predict_operation(info));
            if info.task == Task::ZeroShotImageClassification {
                paths.insert(
                    format!("/models/{}/image-embeddings", info.name),
                    image_embeddings_operation(info),
                );
            }
        }
        // The served models' names where a route takes one.
        narrow_body(paths, "/v1/embeddings", "EmbeddingsRequest", "model", &text_embedders);
        narrow_dimensions(paths, models);
        narrow_body(
            paths,
            "/embed",
            "TeiEmbedRequest",
            "model",
            &names(&of_task(Task::FeatureExtraction)),
        );
        narrow_body(
            paths,
            "/predict",
            "TeiPredictRequest",
            "model",
            &names(&of_task(Task::TextClassification)),
        );
        narrow_body(paths, "/tokenize", "TokenizeRequest", "model", &text_models);
        for path_item in paths.values_mut() {
            name_parameters(path_item, &all);
            errors(path_item);
        }
    }
    document
}

/// The request body of `path`: `schema` (a component) with its `field` one of `names`,
/// required unless one model is the only one it could name.
fn narrow_body(paths: &mut Map<String, Value>, path: &str, schema: &str, field: &str, names: &[&str]) {
    let Some(body) = paths
        .get_mut(path)
        .and_then(|item| item.pointer_mut("/post/requestBody/content/application~1json"))
    else {
        return;
    };
    let mut narrowed = json!({"properties": {field: {"type": "string", "enum": names}}});
    if names.len() != 1 {
        narrowed["required"] = json!([field]);
    }
    body["schema"] = json!({"allOf": [reference(schema), narrowed]});
}

/// `/v1/embeddings`'s `dimensions` at most the named model's dimension.
fn narrow_dimensions(paths: &mut Map<String, Value>, models: &[&ModelInfo]) {
    let Some(schema) = paths
        .get_mut("/v1/embeddings")
        .and_then(|item| item.pointer_mut("/post/requestBody/content/application~1json/schema/allOf"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let each: Vec<Value> = models
        .iter()
        .filter(|info| info.embeds_texts())
        .filter_map(|info| {
            let dimension = info.dimension?;
            Some(json!({"properties": {
                "model": {"const": info.name},
                "dimensions": {"type": ["integer", "null"], "maximum": dimension},
            }}))
        })
        .collect();
    if !each.is_empty() {
        schema.push(json!({"anyOf": each}));
    }
}

/// Every `{name}` path parameter and `?model=` query parameter of `path_item` as one of
/// the served models' names.
fn name_parameters(path_item: &mut Value, names: &[&str]) {
    let Some(operations) = path_item.as_object_mut() else {
        return;
    };
    for operation in operations.values_mut() {
        let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else {
            continue;
        };
        for parameter in parameters
            .iter_mut()
            .filter(|p| (p["in"] == "path" && p["name"] == "name") || (p["in"] == "query" && p["name"] == "model"))
        {
            parameter["schema"] = json!({"type": "string", "enum": names});
        }
    }
}

/// The error answers every route with a request body has, added to its own.
fn errors(path_item: &mut Value) {
    let Some(operation) = path_item.get_mut("post") else {
        return;
    };
    if operation.get("requestBody").is_none() {
        return;
    }
    const OURS: [(&str, &str); 8] = [
        ("400", "malformed JSON"),
        ("404", "unknown model"),
        ("413", "body, batch or text too large"),
        ("415", "wrong content type"),
        ("422", "an invalid field, named"),
        ("429", "queue full; retry after Retry-After"),
        ("503", "draining, warming up, or the model still coming"),
        ("504", "no answer within --request-timeout-ms"),
    ];
    // OpenAI's statuses (`OpenAiError`): every invalid request is 400.
    const OPENAI: [(&str, &str); 6] = [
        (
            "400",
            "an invalid request: a field named in `param`, malformed JSON, too many or too long inputs",
        ),
        ("404", "unknown model (`model_not_found`)"),
        ("429", "queue full; retry after Retry-After"),
        ("500", "the inference failed"),
        ("503", "draining, warming up, or the model still coming"),
        ("504", "no answer within --request-timeout-ms"),
    ];
    // TEI's (`TeiError`): its `error_type` names, 424 for a failed inference.
    const TEI: [(&str, &str); 10] = [
        ("400", "malformed JSON, or an empty input (`Empty`)"),
        ("404", "unknown model"),
        ("413", "too many or too long inputs (`Validation`)"),
        ("415", "wrong content type"),
        ("422", "an invalid field, named (`Validation`)"),
        ("424", "the inference failed (`Backend`)"),
        ("429", "queue full; retry after Retry-After (`Overloaded`)"),
        ("503", "draining, warming up, or the model still coming (`Unhealthy`)"),
        ("504", "no answer within --request-timeout-ms (`Overloaded`)"),
        ("500", "the server failed while answering"),
    ];
    let (schema, statuses): (&str, &[(&str, &str)]) = match operation["tags"][0].as_str() {
        Some("OpenAI") => ("OpenAiErrorBody", &OPENAI),
        Some("TEI") => ("TeiErrorBody", &TEI),
        _ => ("ErrorBody", &OURS),
    };
    let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, why) in statuses {
        responses.entry(*status).or_insert_with(
            || json!({"description": why, "content": {"application/json": {"schema": reference(schema)}}}),
        );
    }
}

fn reference(schema: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{schema}")})
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

/// An answer for one input or a list of them: `one`, or a list of `one` per input.
/// `anyOf`, not `oneOf`: an empty list, or a list of answers that are lists themselves,
/// fits both.
fn one_or_per_input(one: Value) -> Value {
    json!({"anyOf": [one.clone(), {"type": "array", "items": one}]})
}

/// An image model's request body: the raw image, a form of files and the `parameters`
/// fields as text parts (those named in `required` must be there), or the JSON body
/// `json_schema`. A text part holds a parameter's JSON number or `null`, or its string.
fn image_body(parameters: Value, required: &[&str], json_schema: &str) -> Value {
    let image = json!({"schema": {"type": "string", "format": "binary"}});
    let mut form = json!({"image": {"type": "string", "format": "binary"}});
    if let (Some(form), Value::Object(parameters)) = (form.as_object_mut(), parameters) {
        form.extend(parameters);
    }
    let mut needed = vec!["image"];
    needed.extend(required);
    json!({"required": true, "content": {
        "image/png": image,
        "image/jpeg": image,
        "multipart/form-data": {"schema": {"type": "object", "properties": form, "required": needed}},
        "application/json": {"schema": reference(json_schema)},
    }})
}

/// An image–text model's image embeddings route: images in, vectors of its dimension out.
fn image_embeddings_operation(info: &ModelInfo) -> Value {
    let dimension = info.dimension.unwrap_or(0);
    let vector = json!({"type": "array", "items": {"type": "number"}, "minItems": dimension, "maxItems": dimension});
    json!({"post": {
        "tags": ["Inference API"],
        "summary": "Embed images with the image tower (unit vectors in the text tower's space)",
        "operationId": format!("image_embeddings_{}", info.name),
        "requestBody": image_body(json!({}), &[], "ImageEmbedRequest"),
        "responses": {"200": {"description": "one vector for one image, a list of vectors for a list", "content": {"application/json": {"schema": one_or_per_input(vector)}}}},
    }})
}

/// The Inference API route of one model: its task's request, its answer narrowed to the
/// model's facts.
fn predict_operation(info: &ModelInfo) -> Value {
    let labels = |field: &str| json!({"properties": {field: {"type": "string", "enum": info.labels}}});
    let (request, answer, summary) = match info.task {
        Task::TextClassification => {
            let label = json!({"allOf": [reference("LabelScore"), labels("label")]});
            (
                json_body(reference("ClassifyRequest")),
                one_or_per_input(json!({"type": "array", "items": label})),
                "Classify texts (the text-classification pipeline's answers)",
            )
        }
        Task::FeatureExtraction => {
            let dimension = info.dimension.unwrap_or(0);
            let vector =
                json!({"type": "array", "items": {"type": "number"}, "minItems": dimension, "maxItems": dimension});
            (
                json_body(reference("EmbedRequest")),
                one_or_per_input(vector),
                "Embed texts (SentenceTransformer.encode's vectors)",
            )
        }
        Task::TokenClassification => {
            // The entity types, and `O` too: a request whose `ignore_labels` leaves it in
            // gets its runs as groups named `O`, as the pipeline does.
            let mut groups = entity_types(info.labels);
            groups.extend(info.labels.iter().filter(|label| **label == "O"));
            let group = json!({"allOf": [reference("EntityGroup"), {"properties": {"entity_group": {"type": "string", "enum": groups}}}]});
            let token = json!({"allOf": [reference("TokenEntity"), labels("entity")]});
            let entities = json!({"type": "array", "items": {"oneOf": [group, token]}});
            (
                json_body(reference("EntitiesRequest")),
                one_or_per_input(entities),
                "Find entities (the token-classification pipeline's answers)",
            )
        }
        Task::QuestionAnswering => (
            json_body(reference("AnswerRequest")),
            one_or_per_input(reference("QuestionAnswer")),
            "Answer questions from their contexts (the question-answering pipeline's answers)",
        ),
        Task::ImageClassification => {
            let label = json!({"allOf": [reference("LabelScore"), labels("label")]});
            let form = json!({
                "top_k": {"type": ["integer", "null"], "minimum": 1, "description": "null for every label"},
                "function_to_apply": {"type": "string", "enum": ["softmax", "sigmoid", "none"]},
            });
            (
                image_body(form, &[], "ImagesRequest"),
                one_or_per_input(json!({"type": "array", "items": label})),
                "Classify images (the image-classification pipeline's answers)",
            )
        }
        Task::ObjectDetection => {
            let object = json!({"allOf": [reference("DetectedObject"), labels("label")]});
            let unit =
                json!({"type": ["number", "null"], "minimum": 0, "maximum": 1, "description": "null for the default"});
            (
                image_body(
                    json!({"threshold": unit, "iou_threshold": unit}),
                    &[],
                    "DetectionRequest",
                ),
                one_or_per_input(json!({"type": "array", "items": object})),
                "Find objects in images (the object-detection pipeline's answers)",
            )
        }
        Task::ZeroShotImageClassification => {
            let form = json!({
                "candidate_labels": {"type": "string", "pattern": "[^,\\s]", "description": "comma-separated labels"},
                "hypothesis_template": {"type": "string"},
            });
            (
                image_body(form, &["candidate_labels"], "ZeroShotRequest"),
                one_or_per_input(json!({"type": "array", "items": reference("CandidateScore")})),
                "Score images against any labels (the zero-shot-image-classification pipeline's answers)",
            )
        }
    };
    json!({"post": {
        "tags": ["Inference API"],
        "summary": summary,
        "operationId": format!("predict_{}", info.name),
        "requestBody": request,
        "responses": {"200": {"description": "the answer", "content": {"application/json": {"schema": answer}}}},
    }})
}
