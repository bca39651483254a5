//! Why the core did not answer a request: each kind maps to one HTTP status in the
//! server's error type, and every protocol says it its own way.

use std::time::Duration;

use crate::engine::Refused;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// What the request sent does not fit the model (a text for an image model, a field
    /// out of range); the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// A text over the model's max length where truncation is refused, or an image over
    /// the pixel limit; the message names which.
    #[error("{0}")]
    TooLarge(String),
    /// The model's queue is full: admission refused the request at once.
    #[error("{0}")]
    Busy(String),
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The model's engine has stopped (a reload swapped it out while the request waited).
    #[error("{0}")]
    Stopped(String),
    /// Inference failed: every request of the batch gets the same message.
    #[error("{0}")]
    Failed(String),
}

impl From<Refused> for CoreError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Busy { .. } => Self::Busy(refused.to_string()),
            Refused::TimedOut(after) => Self::Timeout(after),
            Refused::Stopped(_) => Self::Stopped(refused.to_string()),
            Refused::Failed(message) => Self::Failed(message),
        }
    }
}

impl From<modelcrate_runtime::Error> for CoreError {
    fn from(error: modelcrate_runtime::Error) -> Self {
        match error {
            // What the request sent does not fit the model (a text for an image model).
            modelcrate_runtime::Error::Input(message) => Self::Invalid(message),
            other => Self::Failed(other.to_string()),
        }
    }
}
