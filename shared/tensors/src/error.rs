//! The crate's one error enum and its classification for the runtime's gRPC code table.

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the codec, the key schema or a store.
///
/// Messages are lowercase and name the field (or key) and the limit involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something malformed (a shape, a key component, a config field).
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// A value is over a configured size limit.
    #[error("{what} is {actual} bytes, over the limit {limit_name} = {limit}")]
    TooLarge {
        what: String,
        actual: usize,
        limit_name: &'static str,
        limit: usize,
    },

    /// The key does not exist (never written, expired or deleted).
    #[error("tensor not found: {key} (missing or expired)")]
    NotFound { key: String },

    /// Bytes that should be a tensor (or a cache manifest) are not: truncated, bad header,
    /// checksum mismatch.
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: String, reason: String },

    /// The backend cannot be reached (connect refused, timeout, connection dropped).
    #[error("tensor store unavailable: {reason}")]
    Unavailable { reason: String },

    /// The backend refused our credentials (AUTH missing or wrong).
    #[error("tensor store authentication failed: {reason}")]
    Auth { reason: String },

    /// Anything else: an unexpected reply, a bug.
    #[error("tensor store internal error: {reason}")]
    Internal { reason: String },
}

/// Coarse class of an [`Error`], so the runtime maps it to a gRPC code in one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Bad input or over a limit: `INVALID_ARGUMENT`.
    Validation,
    /// A missing tensor: `FAILED_PRECONDITION` (DESIGN.md §4).
    NotFound,
    /// The store is down or refuses us: `UNAVAILABLE` (retryable).
    Unavailable,
    /// Stored bytes failed validation or their checksum: `DATA_LOSS`.
    Corrupt,
    /// Anything else: `INTERNAL`.
    Internal,
}

impl Error {
    /// The class of this error; see [`ErrorCode`] for the intended gRPC codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid { .. } | Error::TooLarge { .. } => ErrorCode::Validation,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Corrupt { .. } => ErrorCode::Corrupt,
            Error::Unavailable { .. } | Error::Auth { .. } => ErrorCode::Unavailable,
            Error::Internal { .. } => ErrorCode::Internal,
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Name the key a codec error came from, so a corrupt value can be found in Redis.
    pub(crate) fn at_key(self, key: &str) -> Self {
        match self {
            Error::Corrupt { reason, .. } => Error::Corrupt {
                what: format!("tensor value at {key}"),
                reason,
            },
            other => other,
        }
    }
}
