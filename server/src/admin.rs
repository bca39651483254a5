//! The admin route: `POST /admin/models/{name}/reload` reloads a model behind its canary
//! (see `reload`) and answers when it has swapped (200, with the canary's checks) or been
//! refused (422 naming the stage and the failed checks; the old model serves on). It is
//! off (403 naming the flag) unless the server was started with `--admin-token`, and then
//! wants `Authorization: Bearer <token>`: a reload costs seconds of every core, which no
//! one who merely reaches the port may spend.

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

/// The admin token: compared in time that depends only on its own length, and never
/// shown (its `Debug` hides it), so that no log or panic message carries it.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    pub fn new(token: &str) -> Self {
        Self(token.trim().to_string())
    }

    /// Its length in bytes, spaces around it trimmed.
    pub fn length(&self) -> usize {
        self.0.len()
    }

    fn is(&self, given: &str) -> bool {
        same(given.trim().as_bytes(), self.0.as_bytes())
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(hidden)")
    }
}

/// Whether `given` equals `secret`, in time that depends only on the secret's length:
/// neither where they differ nor how long the guess is shows in it.
fn same(given: &[u8], secret: &[u8]) -> bool {
    let mut difference = u64::from(given.len() != secret.len());
    for (at, byte) in secret.iter().enumerate() {
        let other = given.get(at).copied().unwrap_or(!byte);
        difference |= u64::from(std::hint::black_box(other ^ byte));
    }
    difference == 0
}

/// Refuses every caller while no admin token is set, and a caller without it after.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &state.reloader.admin_token else {
        return Err(ApiError::Forbidden(
            "the admin routes are off: start the server with --admin-token (or MODELCRATE_ADMIN_TOKEN) to use them"
                .into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match given {
        Some(given) if token.is(given) => Ok(()),
        Some(_) => Err(ApiError::Unauthorized("the admin token is wrong".into())),
        None => Err(ApiError::Unauthorized(
            "the admin routes want `Authorization: Bearer <token>` (--admin-token)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::{AdminToken, same};

    #[test]
    fn only_the_secret_itself_is_the_same() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cres", b"s3cret"));
        assert!(!same(b"s3cre", b"s3cret"), "a prefix");
        assert!(!same(b"s3crett", b"s3cret"), "longer");
        assert!(!same(b"", b"s3cret"));
        // A guess whose missing tail would be the complement of the secret's is no match.
        assert!(!same(b"s", &[b's', !b'x']));
    }

    #[test]
    fn the_token_is_never_shown() {
        let token = AdminToken::new(" s3cret-token ");
        assert!(token.is("s3cret-token") && token.is(" s3cret-token"));
        assert!(!format!("{token:?}").contains("s3cret"));
    }
}

/// `POST /admin/models/{name}/reload`.
#[utoipa::path(post, path = "/admin/models/{name}/reload", tag = "Admin",
    summary = "Reload a model from its folder: swapped in only once it passes its canary (the parity gate against the golden outputs); the old model serves until then, and on when refused",
    params(("name" = String, Path, description = "a served model")),
    responses(
        (status = 200, description = "swapped: generation, variant, seconds per stage, the canary's checks"),
        (status = 401, description = "the request's bearer token is missing or wrong", body = ErrorBody),
        (status = 403, description = "the admin routes are off: the server was started without --admin-token", body = ErrorBody),
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
