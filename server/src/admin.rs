//! The admin route: `POST /admin/models/{name}/reload` reloads a model behind its canary
//! (see `reload`) and answers when it has swapped (200, with the canary's checks) or been
//! refused (422 naming the stage and the failed checks; the old model serves on). With
//! `--admin-token`, it wants `Authorization: Bearer <token>`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::{ApiError, ErrorBody};
use crate::lifecycle::Phase;
use crate::reload::ReloadError;
use crate::served::Trigger;
use crate::state::AppState;

/// Whether two byte strings are equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses a caller without the admin token, when one is set.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.reloader.admin_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        Some(given) if same(given.trim().as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("the admin token is wrong".into())),
        None => Err(ApiError::Unauthorized(
            "the admin routes want `Authorization: Bearer <token>` (--admin-token)".into(),
        )),
    }
}

/// `POST /admin/models/{name}/reload`.
#[utoipa::path(post, path = "/admin/models/{name}/reload", tag = "Admin",
    summary = "Reload a model from its folder: swapped in only once it passes its canary (the parity gate against the golden outputs); the old model serves until then, and on when refused",
    params(("name" = String, Path, description = "a served model")),
    responses(
        (status = 200, description = "swapped: generation, variant, seconds per stage, the canary's checks"),
        (status = 401, description = "--admin-token is set and the request's bearer token is missing or wrong", body = ErrorBody),
        (status = 404, description = "unknown model", body = ErrorBody),
        (status = 409, description = "a reload of this model is already running", body = ErrorBody),
        (status = 422, description = "refused at load, canary or warm-up (`stage`, `failures`): the old model serves on", body = ErrorBody),
        (status = 503, description = "warming up or draining", body = ErrorBody)))]
pub async fn reload(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    if let Err(error) = authorize(&state, &headers) {
        return error.into_response();
    }
    if state.lifecycle.phase() != Phase::Ready {
        return ApiError::Unavailable("models reload only while the server is ready".into()).into_response();
    }
    let (models, reloader, metrics) = (state.models.clone(), state.reloader.clone(), state.metrics.clone());
    let model = name.clone();
    let outcome = tokio::task::spawn_blocking(move || reloader.reload(&models, &model, Trigger::Admin, &metrics)).await;
    match outcome {
        Ok(Ok(swapped)) => {
            let canary: Vec<_> = swapped
                .canary
                .iter()
                .map(|(check, figure, bound)| json!({"check": check, "figure": figure, "bound": bound}))
                .collect();
            Json(json!({
                "model": name,
                "outcome": "swapped",
                "generation": swapped.generation,
                "variant": swapped.attempt.variant,
                "seconds": swapped.attempt.seconds,
                "canary": canary,
            }))
            .into_response()
        }
        Ok(Err(ReloadError::NotServed(name))) => ApiError::ModelNotFound(name).into_response(),
        Ok(Err(error @ ReloadError::InProgress(_))) => ApiError::Conflict(error.to_string()).into_response(),
        Ok(Err(
            ref error @ ReloadError::Refused {
                stage,
                ref failures,
                generation,
                ..
            },
        )) => {
            let refused = ApiError::ReloadRefused(error.to_string());
            refused.respond_with(json!({
                "error": refused.to_string(),
                "error_type": refused.kind(),
                "model": name,
                "stage": stage,
                "failures": failures,
                "generation": generation,
            }))
        }
        Err(panicked) => ApiError::Inference(format!("the reload stopped: {panicked}")).into_response(),
    }
}
