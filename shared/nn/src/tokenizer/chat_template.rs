//! Chat templates: the Jinja template a chat model ships (in `tokenizer_config.json`,
//! `chat_template.jinja`, or GGUF `tokenizer.chat_template`), rendered with minijinja the way
//! transformers' `apply_chat_template(..., tokenize=False)` renders it with jinja2:
//! `trim_blocks` and `lstrip_blocks` on, `raise_exception` and a Python-style `tojson`, the
//! special tokens (`bos_token`, `eos_token`, `unk_token`, `pad_token`) as variables, and
//! `tools`/`documents` set to none.

use super::{TokenizerError, template_methods};
use crate::gguf::GgufFile;
use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};
use std::path::Path;

const TEMPLATE_NAME: &str = "chat";

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The special tokens a template may refer to by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub unk_token: Option<String>,
    pub pad_token: Option<String>,
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    special_tokens: SpecialTokens,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("special_tokens", &self.special_tokens)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source`; a syntax error is reported here, not at render time.
    pub fn new(source: impl Into<String>, special_tokens: SpecialTokens) -> Result<Self, TokenizerError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(template_methods::python_method);
        env.add_function("raise_exception", template_methods::raise_exception);
        env.add_filter("tojson", template_methods::tojson);
        env.add_template_owned(TEMPLATE_NAME, source.into())
            .map_err(|e| TokenizerError::Template(format!("{e:#}")))?;
        Ok(Self { env, special_tokens })
    }

    /// The template of a GGUF file (`tokenizer.chat_template`), with its special tokens.
    pub fn from_gguf(file: &GgufFile) -> Result<Option<Self>, TokenizerError> {
        let vocab = super::GgufVocab::from_gguf(file)?;
        let Some(source) = vocab.chat_template.clone() else {
            return Ok(None);
        };
        let special_tokens = SpecialTokens {
            bos_token: vocab.bos_token().map(str::to_string),
            eos_token: vocab.eos_token().map(str::to_string),
            unk_token: vocab.unk_token().map(str::to_string),
            pad_token: vocab.pad_token().map(str::to_string),
        };
        Self::new(source, special_tokens).map(Some)
    }

    /// The template of an HF `tokenizer_config.json`: its `chat_template` (a string, or a
    /// list of `{name, template}` of which `default` is taken), else a `chat_template.jinja`
    /// beside it (where transformers 5 saves it).
    pub fn from_tokenizer_config(path: &Path) -> Result<Self, TokenizerError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| TokenizerError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        let token = |key: &str| match &config[key] {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
            _ => None,
        };
        let special_tokens = SpecialTokens {
            bos_token: token("bos_token"),
            eos_token: token("eos_token"),
            unk_token: token("unk_token"),
            pad_token: token("pad_token"),
        };
        let source = match &config["chat_template"] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(named) => named
                .iter()
                .find(|t| t["name"] == "default")
                .and_then(|t| t["template"].as_str())
                .map(str::to_string)
                .ok_or_else(|| TokenizerError::NoChatTemplate {
                    path: path.to_path_buf(),
                })?,
            _ => {
                let beside = path.with_file_name("chat_template.jinja");
                std::fs::read_to_string(&beside).map_err(|_| TokenizerError::NoChatTemplate {
                    path: path.to_path_buf(),
                })?
            }
        };
        Self::new(source, special_tokens)
    }

    /// Renders `messages`; with `add_generation_prompt`, ends with the assistant's header.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| TokenizerError::Template(format!("{e:#}")))?;
        let tokens = &self.special_tokens;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => tokens.bos_token,
                eos_token => tokens.eos_token,
                unk_token => tokens.unk_token,
                pad_token => tokens.pad_token,
                tools => (),
                documents => (),
            })
            .map_err(|e| TokenizerError::Template(format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are helpful<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn render(source: &str, messages: &[ChatMessage]) -> Result<String, TokenizerError> {
        let tokens = SpecialTokens {
            bos_token: Some("<s>".to_string()),
            ..SpecialTokens::default()
        };
        ChatTemplate::new(source, tokens)?.render(messages, true)
    }

    #[test]
    fn renders_chatml_with_a_default_system_prompt() {
        let rendered = render(CHATML, &[ChatMessage::new("user", "Hi")]).unwrap();
        assert_eq!(
            rendered,
            "<|im_start|>system\nYou are helpful<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn trims_blocks_like_transformers() {
        let source = "{% for m in messages %}\n  {{ m.content }}\n{% endfor %}";
        let rendered = render(
            source,
            &[ChatMessage::new("user", "a"), ChatMessage::new("user", "b")],
        )
        .unwrap();
        assert_eq!(rendered, "  a\n  b\n");
    }

    #[test]
    fn python_methods_special_tokens_and_tojson() {
        let source = "{{ bos_token }}{{ messages[0].content.strip() }}|{{ messages[0].get('name', 'anon') }}|{{ messages[0].role.upper() }}|{{ {'a': [1, 'é']} | tojson }}|{{ tools is none }}";
        let rendered = render(source, &[ChatMessage::new("user", "  hi \n")]).unwrap();
        assert_eq!(rendered, "<s>hi|anon|USER|{\"a\": [1, \"é\"]}|True");
    }

    #[test]
    fn raise_exception_and_syntax_errors_are_errors() {
        let source = "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}";
        let err = render(source, &[ChatMessage::new("system", "x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("first message must be from the user"), "{err}");
        let err = render("{% for %}", &[]).unwrap_err().to_string();
        assert!(err.starts_with("chat template"), "{err}");
    }

    #[test]
    fn reads_tokenizer_config_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer_config.json");
        let config = serde_json::json!({
            "chat_template": "{{ bos_token }}{{ messages[0].content }}",
            "bos_token": {"content": "<bos>"},
        });
        std::fs::write(&path, config.to_string()).unwrap();
        let template = ChatTemplate::from_tokenizer_config(&path).unwrap();
        assert_eq!(
            template.render(&[ChatMessage::new("user", "x")], false).unwrap(),
            "<bos>x"
        );

        std::fs::write(&path, "{}").unwrap();
        let err = ChatTemplate::from_tokenizer_config(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `chat_template`"), "{err}");
        std::fs::write(dir.path().join("chat_template.jinja"), "{{ messages | length }}").unwrap();
        let template = ChatTemplate::from_tokenizer_config(&path).unwrap();
        assert_eq!(template.render(&[], false).unwrap(), "0");
    }
}
