//! Wire request -> [`StoryRequest`]: every limit and default documented in
//! `story_llm.proto` and `common.proto`, checked and applied here, before any queueing.
//! Each error names the field and the limit (`` `n_scenes` must be between 1 and 8, got
//! 9 ``).

use crate::{config::GenerationDefaults, service::StoryRequest};
use storyreel_llm::seed;
use storyreel_proto::{
    common::{JobContext, SamplingParams, Stage},
    story_llm::{GenerateRequest, GenerateStreamRequest},
};
use storyreel_runtime::{
    ValidationError,
    config::check_range,
    job::validate_context,
    text::{check_max_chars, check_no_control_chars, check_trimmed_len, excerpt},
};

pub const TITLE_MAX_CHARS: usize = 500;
pub const N_SCENES_MAX: u32 = 8;
/// `n_scenes` when the request leaves it unset.
pub const DEFAULT_N_SCENES: u32 = 4;
pub const STYLE_MAX_CHARS: usize = 64;
/// Longest language tag accepted (RFC 5646 §4.4.1 asks implementations to support 35).
pub const LANGUAGE_MAX_CHARS: usize = 35;
/// `language` when the request leaves it empty.
pub const DEFAULT_LANGUAGE: &str = "en";

/// Validates a `Generate` request and applies the server defaults.
pub fn validate_generate(
    request: GenerateRequest,
    defaults: &GenerationDefaults,
) -> Result<StoryRequest, ValidationError> {
    // Destructured, so a field added to the proto is a compile error here until handled.
    let GenerateRequest {
        context,
        title,
        n_scenes,
        style,
        language,
        seed,
        sampling,
    } = request;
    let fields = Fields {
        context,
        title,
        n_scenes,
        style,
        language,
        seed,
        sampling,
    };
    validate_fields(fields, defaults)
}

/// Validates a `GenerateStream` request: the fields of `Generate`, and no others.
pub fn validate_generate_stream(
    request: GenerateStreamRequest,
    defaults: &GenerationDefaults,
) -> Result<StoryRequest, ValidationError> {
    let GenerateStreamRequest {
        context,
        title,
        n_scenes,
        style,
        language,
        seed,
        sampling,
    } = request;
    let same = GenerateRequest {
        context,
        title,
        n_scenes,
        style,
        language,
        seed,
        sampling,
    };
    validate_generate(same, defaults)
}

/// The fields both requests share.
struct Fields {
    context: Option<JobContext>,
    title: String,
    n_scenes: Option<u32>,
    style: String,
    language: String,
    seed: Option<u64>,
    sampling: Option<SamplingParams>,
}

fn validate_fields(fields: Fields, defaults: &GenerationDefaults) -> Result<StoryRequest, ValidationError> {
    let title = check_trimmed_len("title", &fields.title, 1, TITLE_MAX_CHARS)?;
    check_no_control_chars("title", title)?;

    let n_scenes = fields.n_scenes.unwrap_or(DEFAULT_N_SCENES);
    check_range("n_scenes", n_scenes, 1, N_SCENES_MAX)?;

    let style = fields.style.trim();
    check_max_chars("style", style, STYLE_MAX_CHARS)?;
    check_no_control_chars("style", style)?;

    let language = match fields.language.trim() {
        "" => DEFAULT_LANGUAGE.to_string(),
        tag => validate_language_tag(tag)?,
    };

    let sampling = defaults.apply(fields.sampling)?;
    let (job, deadline) = validate_context(fields.context)?;
    let (seed, seed_origin) = seed::choose(fields.seed, job.seed, Stage::Story);

    Ok(StoryRequest {
        title: title.to_string(),
        n_scenes: n_scenes as usize,
        style: (!style.is_empty()).then(|| style.to_string()),
        language,
        seed,
        seed_origin,
        sampling,
        deadline,
        job,
    })
}

/// A BCP-47 tag, syntactically: a 2-3 letter primary language subtag (the 4-8 letter
/// forms are reserved or unregistered), then subtags of 1-8
/// letters or digits, separated by `-`; at most [`LANGUAGE_MAX_CHARS`] characters.
/// Returns it as given (case is not significant in BCP-47).
fn validate_language_tag(tag: &str) -> Result<String, ValidationError> {
    let err = || {
        ValidationError::new(
            "language",
            format!(
                "must be a BCP-47 language tag of at most {LANGUAGE_MAX_CHARS} characters, \
                 such as `en` or `pt-BR`, got {:?}",
                excerpt(tag, 80)
            ),
        )
    };
    if tag.len() > LANGUAGE_MAX_CHARS || !tag.is_ascii() {
        return Err(err());
    }
    let mut subtags = tag.split('-');
    let primary = subtags.next().unwrap_or_default();
    let primary_ok = matches!(primary.len(), 2 | 3) && primary.bytes().all(|b| b.is_ascii_alphabetic());
    let rest_ok = subtags.all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    if primary_ok && rest_ok {
        Ok(tag.to_string())
    } else {
        Err(err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{JobInfo, Sampling, SeedOrigin};
    use std::time::{Instant, SystemTime};
    use storyreel_proto::common::ModelPin;

    fn defaults() -> GenerationDefaults {
        GenerationDefaults::default()
    }

    fn valid() -> GenerateRequest {
        GenerateRequest {
            title: "The Fox and the River".into(),
            ..Default::default()
        }
    }

    fn error_of(request: GenerateRequest) -> String {
        validate_generate(request, &defaults())
            .expect_err("request should be rejected")
            .to_string()
    }

    #[test]
    fn unset_fields_take_the_documented_defaults() {
        let request = validate_generate(valid(), &defaults()).unwrap();
        assert_eq!(request.title, "The Fox and the River");
        assert_eq!(request.n_scenes, 4);
        assert_eq!(request.style, None);
        assert_eq!(request.language, "en");
        assert_eq!(request.seed_origin, SeedOrigin::Random);
        assert_eq!(
            request.sampling,
            Sampling {
                temperature: 0.7,
                top_p: 0.9,
                top_k: 0,
                repetition_penalty: 1.3,
                max_new_tokens: 128,
            }
        );
        assert_eq!(request.deadline, None);
        assert_eq!(request.job, JobInfo::default());
    }

    #[test]
    fn server_defaults_come_from_the_config() {
        let defaults = GenerationDefaults {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 50,
            repetition_penalty: 1.0,
            max_new_tokens: 80,
        };
        let request = validate_generate(valid(), &defaults).unwrap();
        assert_eq!(
            request.sampling,
            Sampling {
                temperature: 0.0,
                top_p: 1.0,
                top_k: 50,
                repetition_penalty: 1.0,
                max_new_tokens: 80,
            }
        );
    }

    #[test]
    fn set_fields_are_kept_and_trimmed() {
        let request = validate_generate(
            GenerateRequest {
                title: "  The Fox  \n".into(),
                n_scenes: Some(8),
                style: " fairy tale ".into(),
                language: " pt-BR ".into(),
                seed: Some(7),
                sampling: Some(SamplingParams {
                    temperature: Some(0.0),
                    top_p: Some(1.0),
                    top_k: Some(1000),
                    repetition_penalty: Some(2.0),
                    max_new_tokens: Some(1024),
                }),
                context: Some(JobContext {
                    job_id: "job_1-A".into(),
                    seed: Some(99),
                    request_id: "req-9".into(),
                    model_pin: Some(ModelPin {
                        version: "2024-11-q4_1".into(),
                        endpoint_group: "canary".into(),
                    }),
                    bypass_cache: true,
                    scene_index: Some(7),
                    ..Default::default()
                }),
            },
            &defaults(),
        )
        .unwrap();
        assert_eq!(request.title, "The Fox");
        assert_eq!(request.n_scenes, 8);
        assert_eq!(request.style.as_deref(), Some("fairy tale"));
        assert_eq!(request.language, "pt-BR");
        assert_eq!((request.seed, request.seed_origin), (7, SeedOrigin::Request));
        assert_eq!(request.sampling.top_k, 1000);
        assert_eq!(request.sampling.max_new_tokens, 1024);
        assert_eq!(
            request.job,
            JobInfo {
                job_id: Some("job_1-A".into()),
                request_id: Some("req-9".into()),
                model_version: Some("2024-11-q4_1".into()),
                endpoint_group: Some("canary".into()),
                bypass_cache: true,
                // Recorded, not used: the call covers all scenes.
                scene_index: Some(7),
                seed: Some(99),
            }
        );
    }

    #[test]
    fn the_job_seed_is_used_when_the_request_has_none() {
        let request = |job_seed| GenerateRequest {
            context: Some(JobContext {
                seed: Some(job_seed),
                ..Default::default()
            }),
            ..valid()
        };
        let a = validate_generate(request(5), &defaults()).unwrap();
        let b = validate_generate(request(5), &defaults()).unwrap();
        assert_eq!(a.seed_origin, SeedOrigin::Job);
        assert_eq!(a.seed, b.seed);
        assert_eq!(a.seed, seed::from_job(5, Stage::Story));
    }

    #[test]
    fn each_limit_is_named_in_its_error() {
        let long = |n: usize| "x".repeat(n);
        let sampling = |s: SamplingParams| GenerateRequest {
            sampling: Some(s),
            ..valid()
        };
        let context = |c: JobContext| GenerateRequest {
            context: Some(c),
            ..valid()
        };
        let cases: Vec<(GenerateRequest, &str)> = vec![
            (
                GenerateRequest {
                    title: String::new(),
                    ..valid()
                },
                "`title` must be 1-500 characters (after trimming), got empty",
            ),
            (
                GenerateRequest {
                    title: " \n\t ".into(),
                    ..valid()
                },
                "`title` must be 1-500 characters (after trimming), got empty",
            ),
            (
                GenerateRequest {
                    title: long(501),
                    ..valid()
                },
                "`title` must be 1-500 characters (after trimming), got 501 characters",
            ),
            (
                GenerateRequest {
                    title: "é".repeat(501),
                    ..valid()
                },
                "`title` must be 1-500 characters (after trimming), got 501 characters",
            ),
            (
                GenerateRequest {
                    title: "a\u{0}b".into(),
                    ..valid()
                },
                "`title` must not contain control characters, found U+0000",
            ),
            (
                GenerateRequest {
                    n_scenes: Some(0),
                    ..valid()
                },
                "`n_scenes` must be between 1 and 8, got 0",
            ),
            (
                GenerateRequest {
                    n_scenes: Some(9),
                    ..valid()
                },
                "`n_scenes` must be between 1 and 8, got 9",
            ),
            (
                GenerateRequest {
                    style: long(65),
                    ..valid()
                },
                "`style` must be at most 64 characters, got 65",
            ),
            (
                GenerateRequest {
                    language: "english please".into(),
                    ..valid()
                },
                "`language` must be a BCP-47 language tag of at most 35 characters, such as `en` or \
                 `pt-BR`, got \"english please\"",
            ),
            (
                sampling(SamplingParams {
                    temperature: Some(2.5),
                    ..Default::default()
                }),
                "`sampling.temperature` must be between 0 and 2, got 2.5",
            ),
            (
                sampling(SamplingParams {
                    temperature: Some(-0.1),
                    ..Default::default()
                }),
                "`sampling.temperature` must be between 0 and 2, got -0.1",
            ),
            (
                sampling(SamplingParams {
                    temperature: Some(f32::NAN),
                    ..Default::default()
                }),
                "`sampling.temperature` must be between 0 and 2, got NaN",
            ),
            (
                sampling(SamplingParams {
                    top_p: Some(0.0),
                    ..Default::default()
                }),
                "`sampling.top_p` must be > 0 and <= 1, got 0",
            ),
            (
                sampling(SamplingParams {
                    top_p: Some(1.5),
                    ..Default::default()
                }),
                "`sampling.top_p` must be > 0 and <= 1, got 1.5",
            ),
            (
                sampling(SamplingParams {
                    top_k: Some(1001),
                    ..Default::default()
                }),
                "`sampling.top_k` must be between 0 and 1000, got 1001",
            ),
            (
                sampling(SamplingParams {
                    repetition_penalty: Some(0.5),
                    ..Default::default()
                }),
                "`sampling.repetition_penalty` must be between 1 and 2, got 0.5",
            ),
            (
                sampling(SamplingParams {
                    repetition_penalty: Some(2.1),
                    ..Default::default()
                }),
                "`sampling.repetition_penalty` must be between 1 and 2, got 2.1",
            ),
            (
                sampling(SamplingParams {
                    max_new_tokens: Some(0),
                    ..Default::default()
                }),
                "`sampling.max_new_tokens` must be between 1 and 1024, got 0",
            ),
            (
                sampling(SamplingParams {
                    max_new_tokens: Some(1025),
                    ..Default::default()
                }),
                "`sampling.max_new_tokens` must be between 1 and 1024, got 1025",
            ),
            (
                context(JobContext {
                    job_id: "job/1".into(),
                    ..Default::default()
                }),
                "`context.job_id` must be 1-64 characters of [A-Za-z0-9_-] (or empty), got \"job/1\"",
            ),
            (
                context(JobContext {
                    job_id: long(65),
                    ..Default::default()
                }),
                "`context.job_id` must be 1-64 characters of [A-Za-z0-9_-] (or empty), got \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
            ),
            (
                context(JobContext {
                    request_id: long(129),
                    ..Default::default()
                }),
                "`context.request_id` must be at most 128 characters, got 129",
            ),
            (
                context(JobContext {
                    model_pin: Some(ModelPin {
                        version: long(129),
                        endpoint_group: String::new(),
                    }),
                    ..Default::default()
                }),
                "`context.model_pin.version` must be at most 128 characters, got 129",
            ),
            (
                context(JobContext {
                    model_pin: Some(ModelPin {
                        version: String::new(),
                        endpoint_group: long(65),
                    }),
                    ..Default::default()
                }),
                "`context.model_pin.endpoint_group` must be at most 64 characters, got 65",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(error_of(request), expected);
        }
    }

    #[test]
    fn the_limits_themselves_are_accepted() {
        let ok = [
            GenerateRequest {
                title: "x".repeat(500),
                ..valid()
            },
            GenerateRequest {
                title: format!("  {}  ", "x".repeat(500)),
                ..valid()
            },
            GenerateRequest {
                n_scenes: Some(1),
                ..valid()
            },
            GenerateRequest {
                style: "s".repeat(64),
                ..valid()
            },
            GenerateRequest {
                title: "A title\nover two lines".into(),
                ..valid()
            },
        ];
        for request in ok {
            validate_generate(request, &defaults()).unwrap();
        }
        for sampling in [
            SamplingParams {
                temperature: Some(2.0),
                top_p: Some(f32::MIN_POSITIVE),
                top_k: Some(0),
                repetition_penalty: Some(1.0),
                max_new_tokens: Some(1),
            },
            SamplingParams {
                temperature: Some(0.0),
                top_p: Some(1.0),
                top_k: Some(1000),
                repetition_penalty: Some(2.0),
                max_new_tokens: Some(1024),
            },
        ] {
            let request = GenerateRequest {
                sampling: Some(sampling),
                ..valid()
            };
            validate_generate(request, &defaults()).unwrap();
        }
    }

    #[test]
    fn language_tags() {
        for tag in [
            "en",
            "EN",
            "de",
            "pt-BR",
            "zh-Hant-TW",
            "sr-Latn",
            "es-419",
            "haw",
            "en-US-x-twain",
        ] {
            assert_eq!(validate_language_tag(tag).unwrap(), tag);
        }
        for tag in [
            "e",
            "english",
            "en_US",
            "en-",
            "-en",
            "en--US",
            "de-ÄÖ",
            "en-abcdefghi",
            "1234",
        ] {
            let err = validate_language_tag(tag).unwrap_err();
            assert_eq!(err.field, "language", "{tag}");
        }
        assert!(validate_language_tag(&format!("en-{}", "a-".repeat(20))).is_err());
    }

    #[test]
    fn deadlines_become_instants() {
        let future = SystemTime::now() + std::time::Duration::from_secs(60);
        let past = SystemTime::now() - std::time::Duration::from_secs(60);
        let with = |t: SystemTime| GenerateRequest {
            context: Some(JobContext {
                deadline: Some(t.into()),
                ..Default::default()
            }),
            ..valid()
        };
        let before = Instant::now();
        let request = validate_generate(with(future), &defaults()).unwrap();
        let deadline = request.deadline.unwrap();
        assert!(deadline > before + std::time::Duration::from_secs(55));
        let request = validate_generate(with(past), &defaults()).unwrap();
        assert!(request.deadline.unwrap() <= Instant::now());

        let bad = GenerateRequest {
            context: Some(JobContext {
                deadline: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ..valid()
        };
        assert_eq!(
            error_of(bad),
            format!(
                "`context.deadline` must be a timestamp between years 1 and 9999 with nanos in [0, 1e9), \
                 got seconds={} nanos=0",
                i64::MAX
            )
        );
        let bad_nanos = GenerateRequest {
            context: Some(JobContext {
                deadline: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: -1,
                }),
                ..Default::default()
            }),
            ..valid()
        };
        assert!(error_of(bad_nanos).contains("nanos=-1"));
    }

    #[test]
    fn the_stream_request_is_validated_alike() {
        let err = validate_generate_stream(
            GenerateStreamRequest {
                title: "t".into(),
                n_scenes: Some(9),
                ..Default::default()
            },
            &defaults(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "`n_scenes` must be between 1 and 8, got 9");
        let ok = validate_generate_stream(
            GenerateStreamRequest {
                title: "The Fox".into(),
                seed: Some(3),
                ..Default::default()
            },
            &defaults(),
        )
        .unwrap();
        assert_eq!((ok.title.as_str(), ok.seed, ok.n_scenes), ("The Fox", 3, 4));
    }
}
