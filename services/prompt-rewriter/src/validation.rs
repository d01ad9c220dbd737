//! Wire requests -> [`RewriteRequest`] / [`KeywordsRequest`]: every limit and default of
//! `prompt_rewriter.proto` and `common.proto`, checked and applied before any queueing.
//! Each error names the field (`scenes[2].text`) and the limit.

use crate::service::{KeywordsRequest, RewriteRequest, SceneText};
use storyreel_llm::{GenerationDefaults, seed};
use storyreel_proto::{
    common::{Scene, Stage},
    prompt_rewriter as wire,
};
use storyreel_runtime::{
    ValidationError,
    config::check_range,
    job::validate_context,
    text::{check_max_chars, check_no_control_chars, check_trimmed_len},
};

pub const TITLE_MAX_CHARS: usize = 500;
pub const SCENES_MAX: usize = 8;
pub const SCENE_TEXT_MAX_CHARS: usize = 2000;
pub const STYLE_MAX_CHARS: usize = 64;
pub const CLIP_TOKENS_MIN: u32 = 8;
/// CLIP's context: 77 positions.
pub const CLIP_TOKENS_MAX: u32 = 77;
pub const KEYWORDS_MAX: u32 = 16;
/// `max_keywords` when the request leaves it unset.
pub const DEFAULT_MAX_KEYWORDS: u32 = 8;

/// Validates a `Rewrite` request and applies the server defaults.
pub fn validate_rewrite(
    request: wire::RewriteRequest,
    defaults: &GenerationDefaults,
) -> Result<RewriteRequest, ValidationError> {
    // Destructured, so a field added to the proto is a compile error here until handled.
    let wire::RewriteRequest {
        context,
        title,
        scenes,
        style,
        seed,
        sampling,
        max_clip_tokens,
    } = request;
    let title = check_trimmed_len("title", &title, 1, TITLE_MAX_CHARS)?;
    check_no_control_chars("title", title)?;
    let scenes = validate_scenes("scenes", scenes)?;
    let style = style.trim();
    check_max_chars("style", style, STYLE_MAX_CHARS)?;
    check_no_control_chars("style", style)?;
    let max_clip_tokens = max_clip_tokens.unwrap_or(CLIP_TOKENS_MAX);
    check_range(
        "max_clip_tokens",
        max_clip_tokens,
        CLIP_TOKENS_MIN,
        CLIP_TOKENS_MAX,
    )?;
    let sampling = defaults.apply(sampling)?;
    let (job, deadline) = validate_context(context)?;
    let (seed, seed_origin) = seed::choose(seed, job.seed, Stage::Prompt);
    Ok(RewriteRequest {
        title: title.to_string(),
        scenes,
        style: (!style.is_empty()).then(|| style.to_string()),
        max_clip_tokens: max_clip_tokens as usize,
        seed,
        seed_origin,
        sampling,
        deadline,
        job,
    })
}

/// Validates a `Keywords` request and applies the server defaults.
pub fn validate_keywords(
    request: wire::KeywordsRequest,
    defaults: &GenerationDefaults,
) -> Result<KeywordsRequest, ValidationError> {
    let wire::KeywordsRequest {
        context,
        prompts,
        max_keywords,
        seed,
        sampling,
    } = request;
    let prompts = validate_scenes("prompts", prompts)?;
    let max_keywords = max_keywords.unwrap_or(DEFAULT_MAX_KEYWORDS);
    check_range("max_keywords", max_keywords, 1, KEYWORDS_MAX)?;
    let sampling = defaults.apply(sampling)?;
    let (job, deadline) = validate_context(context)?;
    let (seed, seed_origin) = seed::choose(seed, job.seed, Stage::Keywords);
    Ok(KeywordsRequest {
        prompts,
        max_keywords: max_keywords as usize,
        seed,
        seed_origin,
        sampling,
        deadline,
        job,
    })
}

/// 1-8 entries with distinct indices 0-7 and texts of 1-2000 characters.
fn validate_scenes(field: &str, scenes: Vec<Scene>) -> Result<Vec<SceneText>, ValidationError> {
    if scenes.is_empty() || scenes.len() > SCENES_MAX {
        return Err(ValidationError::new(
            field,
            format!("must have 1-{SCENES_MAX} entries, got {}", scenes.len()),
        ));
    }
    let mut seen = [false; SCENES_MAX];
    let mut out = Vec::with_capacity(scenes.len());
    for (i, Scene { index, text }) in scenes.into_iter().enumerate() {
        let index_field = format!("{field}[{i}].index");
        check_range(&index_field, index, 0, SCENES_MAX as u32 - 1)?;
        if std::mem::replace(&mut seen[index as usize], true) {
            return Err(ValidationError::new(
                index_field,
                format!("must be distinct within `{field}`, got {index} twice"),
            ));
        }
        let text_field = format!("{field}[{i}].text");
        let text = check_trimmed_len(&text_field, &text, 1, SCENE_TEXT_MAX_CHARS)?;
        check_no_control_chars(&text_field, text)?;
        out.push(SceneText {
            index,
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyreel_llm::seed::SeedOrigin;
    use storyreel_proto::common::{JobContext, SamplingParams};

    fn scene(index: u32, text: &str) -> Scene {
        Scene {
            index,
            text: text.into(),
        }
    }

    fn rewrite() -> wire::RewriteRequest {
        wire::RewriteRequest {
            title: "Eight Wonders".into(),
            scenes: vec![scene(0, "The Great Wall."), scene(1, "The pyramids.")],
            ..Default::default()
        }
    }

    fn rewrite_error(change: impl FnOnce(&mut wire::RewriteRequest)) -> String {
        let mut request = rewrite();
        change(&mut request);
        validate_rewrite(request, &GenerationDefaults::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unset_fields_take_the_documented_defaults() {
        let request = validate_rewrite(rewrite(), &GenerationDefaults::default()).unwrap();
        assert_eq!(request.max_clip_tokens, 77);
        assert_eq!(request.style, None);
        assert_eq!(request.seed_origin, SeedOrigin::Random);
        assert_eq!(
            request.scenes[1],
            SceneText {
                index: 1,
                text: "The pyramids.".into()
            }
        );
        let keywords = validate_keywords(
            wire::KeywordsRequest {
                prompts: vec![scene(3, "a red fox")],
                context: Some(JobContext {
                    seed: Some(5),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &GenerationDefaults::default(),
        )
        .unwrap();
        assert_eq!(keywords.max_keywords, 8);
        assert_eq!(keywords.seed, seed::from_job(5, Stage::Keywords));
    }

    #[test]
    fn each_limit_is_named_in_its_error() {
        type Change = Box<dyn FnOnce(&mut wire::RewriteRequest)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|r| r.title = "  ".into()),
                "`title` must be 1-500 characters (after trimming), got empty",
            ),
            (
                Box::new(|r| r.title = "x".repeat(501)),
                "`title` must be 1-500 characters (after trimming), got 501 characters",
            ),
            (
                Box::new(|r| r.scenes.clear()),
                "`scenes` must have 1-8 entries, got 0",
            ),
            (
                Box::new(|r| r.scenes = (0..9).map(|i| scene(i % 8, "x")).collect()),
                "`scenes` must have 1-8 entries, got 9",
            ),
            (
                Box::new(|r| r.scenes[1].index = 8),
                "`scenes[1].index` must be between 0 and 7, got 8",
            ),
            (
                Box::new(|r| r.scenes[1].index = 0),
                "`scenes[1].index` must be distinct within `scenes`, got 0 twice",
            ),
            (
                Box::new(|r| r.scenes[0].text = "\n".into()),
                "`scenes[0].text` must be 1-2000 characters (after trimming), got empty",
            ),
            (
                Box::new(|r| r.scenes[0].text = "y".repeat(2001)),
                "`scenes[0].text` must be 1-2000 characters (after trimming), got 2001 characters",
            ),
            (
                Box::new(|r| r.style = "s".repeat(65)),
                "`style` must be at most 64 characters, got 65",
            ),
            (
                Box::new(|r| r.max_clip_tokens = Some(7)),
                "`max_clip_tokens` must be between 8 and 77, got 7",
            ),
            (
                Box::new(|r| r.max_clip_tokens = Some(78)),
                "`max_clip_tokens` must be between 8 and 77, got 78",
            ),
            (
                Box::new(|r| {
                    r.sampling = Some(SamplingParams {
                        top_p: Some(1.5),
                        ..Default::default()
                    })
                }),
                "`sampling.top_p` must be > 0 and <= 1, got 1.5",
            ),
            (
                Box::new(|r| {
                    r.context = Some(JobContext {
                        job_id: "bad id".into(),
                        ..Default::default()
                    })
                }),
                "`context.job_id` must be 1-64 characters of [A-Za-z0-9_-] (or empty), got \"bad id\"",
            ),
        ];
        for (change, want) in cases {
            assert_eq!(rewrite_error(change), want);
        }
    }

    #[test]
    fn keyword_limits_are_named() {
        let bad = |request: wire::KeywordsRequest| {
            validate_keywords(request, &GenerationDefaults::default())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad(wire::KeywordsRequest::default()),
            "`prompts` must have 1-8 entries, got 0"
        );
        assert_eq!(
            bad(wire::KeywordsRequest {
                prompts: vec![scene(0, "a fox")],
                max_keywords: Some(17),
                ..Default::default()
            }),
            "`max_keywords` must be between 1 and 16, got 17"
        );
    }
}
