//! Streaming: every generated token is handed to a [`TokenSink`] as it is chosen, and the
//! sink's answer cancels its sequence.

use super::FinishReason;

/// One generated token of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEvent {
    /// The request's index in the batch passed to [`super::generate`].
    pub request: usize,
    pub token_id: u32,
    /// 0-based position of the token in the output.
    pub index: usize,
    /// The text this token made final: possibly empty (half of a UTF-8 character, or text
    /// held back because it could start a stop string). The pieces add up to the output text
    /// (for a cancelled request, the output may end with text that was still held back).
    pub text: String,
    /// Set on the request's last event.
    pub finish_reason: Option<FinishReason>,
}

/// Receives tokens as they are generated. Returning `false` cancels that request: it ends
/// with [`FinishReason::Cancelled`] after the token just received, and the other requests of
/// the batch go on.
pub trait TokenSink {
    fn on_token(&mut self, event: TokenEvent) -> bool;
}

impl<F: FnMut(TokenEvent) -> bool> TokenSink for F {
    fn on_token(&mut self, event: TokenEvent) -> bool {
        self(event)
    }
}

/// A channel to another thread; a dropped receiver cancels.
impl TokenSink for std::sync::mpsc::Sender<TokenEvent> {
    fn on_token(&mut self, event: TokenEvent) -> bool {
        self.send(event).is_ok()
    }
}

/// A bounded channel; blocks while full, a dropped receiver cancels.
impl TokenSink for std::sync::mpsc::SyncSender<TokenEvent> {
    fn on_token(&mut self, event: TokenEvent) -> bool {
        self.send(event).is_ok()
    }
}

/// No streaming.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoStream;

impl TokenSink for NoStream {
    fn on_token(&mut self, _: TokenEvent) -> bool {
        true
    }
}
