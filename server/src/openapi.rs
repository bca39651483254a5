//! `GET /openapi.json`: an OpenAPI 3.0 description of this server as it runs, built from
//! the route table's protocols and from each served model's typed facts (its labels as
//! enums, its embedding's length, its entity types, its image formats); and `GET /docs`,
//! Swagger UI on it, from assets vendored in `server/assets/swagger-ui/`.
//! The descriptions are written here, not derived from the handlers' types; the HTTP tests
//! check them against `routes::endpoints()`, the table the router is built from, both ways:
//! every described route answers, and every route is described.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Html;
use modelcrate_runtime::{Task, TaskModel};
use serde_json::{Map, Value, json};

use crate::state::AppState;

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

/// A JSON request body.
fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

/// A 200 answer with `schema`, and the error answers every prediction route has.
fn answers(schema: Value, error: &str) -> Value {
    let error = json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{error}")}}}});
    let mut answers = Map::new();
    answers.insert(
        "200".into(),
        json!({"description": "the answer", "content": {"application/json": {"schema": schema}}}),
    );
    for (status, why) in [
        ("400", "malformed JSON"),
        ("404", "unknown model"),
        ("413", "body, batch or text too large"),
        ("415", "wrong content type"),
        ("422", "an invalid field, named"),
        ("429", "queue full; retry after Retry-After"),
        ("503", "draining or warming up"),
        ("504", "no answer within --request-timeout-ms"),
    ] {
        let mut answer = error.clone();
        answer["description"] = json!(why);
        answers.insert(status.into(), answer);
    }
    Value::Object(answers)
}

fn one_or_many(item: Value) -> Value {
    json!({"oneOf": [item.clone(), {"type": "array", "items": item, "minItems": 1}]})
}

fn text() -> Value {
    json!({"type": "string", "minLength": 1})
}

fn label_score(labels: &[&str]) -> Value {
    json!({"type": "object", "required": ["label", "score"], "properties": {
        "label": {"type": "string", "enum": labels},
        "score": {"type": "number"},
    }})
}

fn vector(dimension: usize) -> Value {
    json!({"type": "array", "items": {"type": "number"}, "minItems": dimension, "maxItems": dimension})
}

/// The Inference API route of one model, from its task and typed facts.
fn predict_operation(model: &dyn TaskModel) -> Value {
    let info = model.info();
    let name = info.name;
    let ranked = json!({"type": "array", "items": label_score(info.labels)});
    let (request, answer, summary) = match info.task {
        Task::TextClassification => (
            json_body(json!({"type": "object", "required": ["inputs"], "properties": {
                "inputs": one_or_many(text()),
                "parameters": {"type": "object", "properties": {
                    "top_k": {"type": "integer", "minimum": 1, "nullable": true},
                    "function_to_apply": {"type": "string", "enum": ["softmax", "sigmoid", "none"]},
                }},
            }})),
            json!({"oneOf": [ranked, {"type": "array", "items": ranked}]}),
            "Classify texts (the text-classification pipeline's answers)",
        ),
        Task::FeatureExtraction => {
            let dimension = info.dimension.unwrap_or(0);
            (
                json_body(json!({"type": "object", "required": ["inputs"], "properties": {
                    "inputs": one_or_many(text()),
                    "parameters": {"type": "object", "properties": {"normalize": {"type": "boolean"}}},
                }})),
                json!({"oneOf": [vector(dimension), {"type": "array", "items": vector(dimension)}]}),
                "Embed texts (SentenceTransformer.encode's vectors)",
            )
        }
        Task::TokenClassification => {
            // Entity groups are the BIO labels' types.
            let mut types: Vec<&str> = Vec::new();
            for label in info.labels.iter().filter(|label| **label != "O") {
                let kind = label
                    .strip_prefix("B-")
                    .or_else(|| label.strip_prefix("I-"))
                    .unwrap_or(label);
                if !types.contains(&kind) {
                    types.push(kind);
                }
            }
            let entity = json!({"type": "object", "properties": {
                "entity_group": {"type": "string", "enum": types},
                "entity": {"type": "string", "enum": info.labels},
                "score": {"type": "number"},
                "word": {"type": "string"},
                "start": {"type": "integer", "description": "character offset"},
                "end": {"type": "integer", "description": "character offset"},
                "index": {"type": "integer"},
            }});
            let entities = json!({"type": "array", "items": entity});
            (
                json_body(json!({"type": "object", "required": ["inputs"], "properties": {
                    "inputs": one_or_many(text()),
                    "parameters": {"type": "object", "properties": {
                        "aggregation_strategy": {"type": "string", "enum": ["none", "simple", "first", "average", "max"]},
                        "ignore_labels": {"type": "array", "items": {"type": "string", "enum": info.labels}},
                    }},
                }})),
                json!({"oneOf": [entities, {"type": "array", "items": entities}]}),
                "Find entities (the token-classification pipeline's answers)",
            )
        }
        Task::ImageClassification => (
            json!({"required": true, "content": {
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"type": "object", "properties": {
                    "image": {"type": "string", "format": "binary"},
                    "top_k": {"type": "integer"},
                    "function_to_apply": {"type": "string"},
                }}},
                "application/json": {"schema": {"type": "object", "required": ["inputs"], "properties": {
                    "inputs": one_or_many(json!({"type": "string", "format": "byte"})),
                    "parameters": {"type": "object", "properties": {"top_k": {"type": "integer", "nullable": true}}},
                }}},
            }}),
            json!({"oneOf": [ranked, {"type": "array", "items": ranked}]}),
            "Classify PNG or JPEG images (the image-classification pipeline's answers)",
        ),
    };
    json!({"post": {
        "tags": [name],
        "summary": summary,
        "description": format!("Model `{name}` ({}), variant `{}`.", info.task.as_str(), info.variant.name),
        "operationId": format!("predict_{}", name.replace('-', "_")),
        "requestBody": request,
        "responses": answers(answer, "Error"),
    }})
}

fn get_operation(tag: &str, summary: &str) -> Value {
    json!({"get": {"tags": [tag], "summary": summary, "responses": {"200": {"description": "OK"}}}})
}

/// `GET /openapi.json`.
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    let mut paths = Map::new();
    let engines = state.models.engines();
    let models: Vec<&dyn TaskModel> = engines.iter().map(|engine| engine.model().as_ref()).collect();
    let names = |task: Task| -> Vec<&str> {
        models
            .iter()
            .filter(|m| m.info().task == task)
            .map(|m| m.info().name)
            .collect()
    };
    for model in &models {
        paths.insert(
            format!("/models/{}/predict", model.info().name),
            predict_operation(*model),
        );
        paths.insert(
            format!("/v2/models/{}", model.info().name),
            get_operation("KServe v2", "Model metadata from the crate's signature"),
        );
    }
    let embedding_models = names(Task::FeatureExtraction);
    let classifiers = names(Task::TextClassification);
    let selector = |models: &[&str]| json!({"type": "string", "enum": models, "description": "the model; may be left out when only one fits"});
    paths.insert("/v1/embeddings".into(), json!({"post": {
        "tags": ["OpenAI"], "summary": "OpenAI embeddings",
        "requestBody": json_body(json!({"type": "object", "required": ["model", "input"], "properties": {
            "model": {"type": "string", "enum": embedding_models},
            "input": one_or_many(text()),
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1},
            "user": {"type": "string"},
        }})),
        "responses": answers(json!({"type": "object", "properties": {
            "object": {"type": "string"},
            "data": {"type": "array", "items": {"type": "object", "properties": {
                "object": {"type": "string"}, "index": {"type": "integer"},
                "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string", "format": "byte"}]},
            }}},
            "model": {"type": "string"},
            "usage": {"type": "object", "properties": {"prompt_tokens": {"type": "integer"}, "total_tokens": {"type": "integer"}}},
        }}), "OpenAiError"),
    }}));
    paths.insert("/v1/models".into(), get_operation("OpenAI", "Every served model"));
    paths.insert("/embed".into(), json!({"post": {
        "tags": ["TEI"], "summary": "TEI embeddings",
        "requestBody": json_body(json!({"type": "object", "required": ["inputs"], "properties": {
            "inputs": one_or_many(text()), "normalize": {"type": "boolean"}, "truncate": {"type": "boolean"},
            "model": selector(&embedding_models),
        }})),
        "responses": answers(json!({"type": "array", "items": {"type": "array", "items": {"type": "number"}}}), "Error"),
    }}));
    paths.insert("/predict".into(), json!({"post": {
        "tags": ["TEI"], "summary": "TEI classification: every label, best first",
        "requestBody": json_body(json!({"type": "object", "required": ["inputs"], "properties": {
            "inputs": {"oneOf": [text(), {"type": "array", "items": {"type": "array", "items": text(), "minItems": 1, "maxItems": 1}}]},
            "raw_scores": {"type": "boolean"}, "truncate": {"type": "boolean"},
            "model": selector(&classifiers),
        }})),
        "responses": answers(json!({"type": "array"}), "Error"),
    }}));
    paths.insert(
        "/tokenize".into(),
        json!({"post": {
            "tags": ["TEI"], "summary": "Tokens with byte offsets",
            "requestBody": json_body(json!({"type": "object", "required": ["inputs"], "properties": {
                "inputs": one_or_many(text()), "add_special_tokens": {"type": "boolean"}, "model": {"type": "string"},
            }})),
            "responses": answers(json!({"type": "array"}), "Error"),
        }}),
    );
    paths.insert(
        "/info".into(),
        get_operation("TEI", "A model's description (?model=name) or the server's limits"),
    );
    for (path, summary) in [
        ("/v2", "Server metadata"),
        ("/v2/health/live", "Liveness"),
        ("/v2/health/ready", "Readiness"),
    ] {
        paths.insert(path.into(), get_operation("KServe v2", summary));
    }
    for model in &models {
        let name = model.info().name;
        if matches!(model.info().task, Task::TextClassification | Task::FeatureExtraction) {
            paths.insert(format!("/v2/models/{name}/infer"), json!({"post": {
                "tags": ["KServe v2"], "summary": "Inference from `text` (BYTES) or token tensors (INT64)",
                "requestBody": json_body(json!({"type": "object", "required": ["inputs"], "properties": {
                    "id": {"type": "string"},
                    "inputs": {"type": "array", "items": {"type": "object", "required": ["name", "shape", "datatype", "data"]}},
                    "outputs": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                }})),
                "responses": answers(json!({"type": "object"}), "Error"),
            }}));
        }
        paths.insert(
            format!("/v2/models/{name}/ready"),
            get_operation("KServe v2", "Model readiness"),
        );
    }
    let error = |why: &str| json!({"description": why, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let all: Vec<&str> = models.iter().map(|m| m.info().name).collect();
    paths.insert("/admin/models/{name}/reload".into(), json!({"post": {
        "tags": ["Admin"],
        "summary": "Reload a model from its folder: swapped in only once it passes its canary (the parity gate against the golden outputs); the old model serves until then, and on when refused",
        "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "enum": all}}],
        "responses": {
            "200": {"description": "swapped", "content": {"application/json": {"schema": {"type": "object", "properties": {
                "model": {"type": "string"}, "outcome": {"type": "string", "enum": ["swapped"]},
                "generation": {"type": "integer"}, "variant": {"type": "string"},
                "seconds": {"type": "object", "additionalProperties": {"type": "number"}},
                "canary": {"type": "array", "items": {"type": "object", "properties": {
                    "check": {"type": "string"}, "figure": {"type": "string"}, "bound": {"type": "string"},
                }}},
            }}}}},
            "401": error("--admin-token is set and the request's bearer token is missing or wrong"),
            "404": error("unknown model"),
            "409": error("a reload of this model is already running"),
            "422": error("refused at load, canary or warm-up (`stage`, `failures`): the old model serves on"),
            "503": error("warming up or draining"),
        },
    }}));
    for (path, summary) in [
        (
            "/models",
            "Every served model: task, labels, signature, variant, limits; `state` is `coming` for a model whose pipeline has not finished (--wait-for-models)",
        ),
        ("/health", "Phase, models, requests in flight"),
        ("/health/live", "Liveness"),
        (
            "/health/ready",
            "Readiness: 200 once warmed up with at least one model serving; `coming` names the models still coming",
        ),
        ("/metrics", "Prometheus metrics"),
    ] {
        paths.insert(path.into(), get_operation("Server", summary));
    }
    Json(json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Modelcrate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Fine-tuned Hugging Face models served from Rust: the Inference API's shapes, OpenAI embeddings, TEI and KServe v2.",
        },
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error", "error_type"], "properties": {
                "error": {"type": "string"}, "error_type": {"type": "string"},
            }},
            "OpenAiError": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                "message": {"type": "string"}, "type": {"type": "string"},
                "param": {"type": "string", "nullable": true}, "code": {"type": "string"},
            }}}},
        }},
    }))
}
