//! The router: the table of every route and its handler (each protocol's module holds
//! its own; the server's own are in `status`), the layers every request passes, and the
//! fallbacks. Every response carries its `x-request-id` (see `request_log`). No handler
//! module imports this one.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::routing::{MethodRouter, get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::state::AppState;
use crate::{admin, card, hf, kserve, openai, openapi, playground, request_log, status, tei};

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
        get_at("/health", status::health),
        get_at("/health/live", status::live),
        get_at("/health/ready", status::ready),
        get_at("/", playground::index),
        get_at("/assets/playground.js", playground::script),
        get_at("/assets/modelcrate.css", playground::stylesheet),
        get_at("/models", status::list_models),
        get_at("/models/{name}", card::card),
        get_at("/metrics", status::metrics),
        post_at("/models/{name}/predict", hf::predict),
        post_at("/models/{name}/image-embeddings", hf::image_embeddings),
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
        .layer(CatchPanicLayer::custom(crate::error::panicked))
        .layer(axum::middleware::from_fn(request_log::with_request_id))
        .with_state(state)
}

/// `router` answering browsers from `origins` (CORS: `*` for any), or as it is when
/// there are none. An origin that is not a valid header value is an error naming it.
pub fn with_cors(router: Router, origins: &[String]) -> anyhow::Result<Router> {
    if origins.is_empty() {
        return Ok(router);
    }
    let allowed = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin)
                    .map_err(|_| anyhow::anyhow!("--cors-allow-origin {origin:?} is not a valid origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(values)
    };
    let exposed = [
        request_log::HEADER,
        "x-tokenization-time",
        "x-preparation-time",
        "x-queue-time",
        "x-inference-time",
        "x-total-time",
        "x-batch-size",
    ]
    .map(HeaderName::from_static);
    let cors = CorsLayer::new()
        .allow_origin(allowed)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static(request_log::HEADER),
        ])
        .expose_headers(exposed);
    Ok(router.layer(cors))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
