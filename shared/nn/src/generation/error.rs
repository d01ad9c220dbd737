//! The one error type of generation.

use crate::llama::LlamaError;

#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    /// A request parameter out of range; names the field and the limit.
    #[error("request {request}: `{field}` {message}")]
    Invalid {
        request: usize,
        field: &'static str,
        message: String,
    },
    #[error(
        "request {request}: the prompt ({prompt_tokens} tokens) plus max_new_tokens ({max_new_tokens}) exceeds the model's context of {max_context} tokens"
    )]
    ContextExceeded {
        request: usize,
        prompt_tokens: usize,
        max_new_tokens: usize,
        max_context: usize,
    },
    #[error("no requests to generate for")]
    Empty,
    #[error("cannot decode generated tokens: {0}")]
    Detokenize(String),
    #[error(transparent)]
    Model(#[from] LlamaError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl GenerationError {
    pub(crate) fn invalid(request: usize, field: &'static str, message: impl Into<String>) -> Self {
        GenerationError::Invalid {
            request,
            field,
            message: message.into(),
        }
    }
}
