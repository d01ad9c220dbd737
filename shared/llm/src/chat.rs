//! Chat turns, before the model's chat template is applied.

use std::fmt;

/// Who speaks a chat turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role name chat templates expect.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A prompt as the worker runs it: the turns rendered with the chat template
/// (`add_generation_prompt = true`), then `assistant_prefix` appended verbatim, so the
/// model continues a pre-filled answer (`"1. ...\n2."`, `"Colours:"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPrompt {
    pub messages: Vec<ChatMessage>,
    pub assistant_prefix: String,
}
