//! The chat prompts of the rewriter (paper eq. 2-3, Fig. 3).
//!
//! A 135M model does not hold a multi-field format (DESIGN.md §9), so each field of a
//! scene is its own short generation: the same system turn, a user turn with the story's
//! title and the scene, and an assistant turn pre-filled with the field's label
//! (`"Colours:"`); decoding stops at the end of the line. The fields of all scenes of a
//! request are independent, so the worker batches them. The prompt S^P is then composed
//! from the fields ([`crate::compose`]), within the CLIP token budget.

use storyreel_llm::{ChatMessage, ChatPrompt, Role};

/// Decoding of a field stops at the end of its line.
pub const FIELD_STOP: &str = "\n";

const SYSTEM: &str = "You turn the scenes of a story into prompts for a text-to-video model. \
                      Answer on one line, in English, with no explanation.";

/// What one generation writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// A one-sentence visual description of the scene: the core of S^P.
    Description,
    VisualElements,
    ColourScheme,
    Shapes,
    Categories,
    /// Search terms S^K of a prompt.
    Keywords,
}

impl Field {
    /// The fields of a scene's rewrite, in the order they are submitted.
    pub const REWRITE: [Field; 5] = [
        Field::Description,
        Field::VisualElements,
        Field::ColourScheme,
        Field::Shapes,
        Field::Categories,
    ];

    /// Names the field in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Field::Description => "description",
            Field::VisualElements => "visual elements",
            Field::ColourScheme => "colour scheme",
            Field::Shapes => "shapes",
            Field::Categories => "categories",
            Field::Keywords => "keywords",
        }
    }

    /// A small number that keeps the sampling seeds of a scene's fields apart.
    pub fn ordinal(self) -> usize {
        match self {
            Field::Description => 0,
            Field::VisualElements => 1,
            Field::ColourScheme => 2,
            Field::Shapes => 3,
            Field::Categories => 4,
            Field::Keywords => 5,
        }
    }

    /// Worded after probing SmolLM2-135M at low temperature: lists of nouns come back as
    /// lists, a category list given as examples is copied back verbatim, so categories get
    /// one example pair only.
    fn instruction(self) -> &'static str {
        match self {
            Field::Description => "Describe what the viewer sees in this scene, in one short sentence.",
            Field::VisualElements => {
                "Name the objects and places that can be seen in this scene, separated by commas."
            }
            Field::ColourScheme => "Which two or three colours dominate this scene? Separate them by commas.",
            Field::Shapes => {
                "Which shapes dominate this scene? Answer with two or three words, separated by commas."
            }
            Field::Categories => {
                "What is the subject of this scene? Answer with one or two words, such as landscape or \
                 architecture."
            }
            Field::Keywords => {
                "Give short search keywords to find a stock video clip of this prompt, separated \
                 by commas."
            }
        }
    }

    /// The label the assistant turn starts with.
    fn label(self) -> &'static str {
        match self {
            Field::Description => "Description:",
            Field::VisualElements => "Visual elements:",
            Field::ColourScheme => "Colours:",
            Field::Shapes => "Shapes:",
            Field::Categories => "Category:",
            Field::Keywords => "Keywords:",
        }
    }
}

/// The prompt that writes `field` of a scene of the story `title`.
pub fn scene_field_prompt(field: Field, title: &str, scene: &str, style: Option<&str>) -> ChatPrompt {
    let mut user = format!("Story: {title}\nScene: {scene}\n");
    if let Some(style) = style {
        user.push_str(&format!("Visual style: {style}\n"));
    }
    user.push_str(field.instruction());
    ChatPrompt {
        messages: vec![
            ChatMessage::new(Role::System, SYSTEM),
            ChatMessage::new(Role::User, user),
        ],
        assistant_prefix: field.label().to_string(),
    }
}

/// The prompt that extracts keywords S^K from a prompt S^P.
pub fn keywords_prompt(prompt: &str) -> ChatPrompt {
    let user = format!("Prompt: {prompt}\n{}", Field::Keywords.instruction());
    ChatPrompt {
        messages: vec![
            ChatMessage::new(Role::System, SYSTEM),
            ChatMessage::new(Role::User, user),
        ],
        assistant_prefix: Field::Keywords.label().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_prompt_carries_the_title_the_scene_and_the_style() {
        let prompt = scene_field_prompt(
            Field::ColourScheme,
            "Eight Wonders",
            "The Great Wall winds over misty hills.",
            Some("watercolour"),
        );
        assert_eq!(prompt.messages[0].role, Role::System);
        let user = &prompt.messages[1].content;
        assert!(user.starts_with("Story: Eight Wonders\nScene: The Great Wall winds over misty hills.\n"));
        assert!(user.contains("Visual style: watercolour\n"));
        assert!(user.ends_with("Which two or three colours dominate this scene? Separate them by commas."));
        assert_eq!(prompt.assistant_prefix, "Colours:");
    }

    #[test]
    fn fields_have_distinct_ordinals_and_labels() {
        let mut ordinals: Vec<usize> = Field::REWRITE.iter().map(|f| f.ordinal()).collect();
        ordinals.push(Field::Keywords.ordinal());
        ordinals.sort();
        ordinals.dedup();
        assert_eq!(ordinals.len(), 6);
        assert_eq!(keywords_prompt("a red fox").assistant_prefix, "Keywords:");
    }
}
