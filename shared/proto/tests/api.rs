//! The generated API: descriptor set contents and wire round trips.

use prost::Message;
use prost_types::FileDescriptorSet;
use storyreel_proto::{FILE_DESCRIPTOR_SET, SERVICE_NAMES, common, keyframe};

fn descriptor_set() -> FileDescriptorSet {
    FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("FILE_DESCRIPTOR_SET decodes")
}

/// Fully qualified names of every service in the descriptor set.
fn services(set: &FileDescriptorSet) -> Vec<String> {
    set.file
        .iter()
        .flat_map(|file| {
            file.service
                .iter()
                .map(move |svc| format!("{}.{}", file.package(), svc.name()))
        })
        .collect()
}

#[test]
fn descriptor_set_has_every_service() {
    let set = descriptor_set();
    let found = services(&set);
    for name in SERVICE_NAMES {
        assert!(found.iter().any(|s| s == name), "{name} missing from {found:?}");
    }
    // The eight services, and ModelService, which every stage serves beside its own.
    assert!(found.iter().any(|s| s == "storyreel.common.v1.ModelService"));
    assert_eq!(
        found.len(),
        SERVICE_NAMES.len() + 1,
        "unexpected services: {found:?}"
    );
    let expected = [
        "storyreel.gateway.v1.GatewayService",
        "storyreel.story_llm.v1.StoryLlmService",
        "storyreel.prompt_rewriter.v1.PromptRewriterService",
        "storyreel.retrieval.v1.RetrievalService",
        "storyreel.keyframe.v1.KeyframeService",
        "storyreel.interpolation.v1.InterpolationService",
        "storyreel.decoder.v1.DecoderService",
        "storyreel.tts.v1.TtsService",
    ];
    for name in expected {
        assert!(found.iter().any(|s| s == name), "{name} missing");
    }
}

#[test]
fn descriptor_set_is_self_contained() {
    // Reflection clients resolve imports from the same set: every dependency of every
    // file must be in it (the well-known types included).
    let set = descriptor_set();
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    for file in &set.file {
        for dep in &file.dependency {
            assert!(
                names.contains(&dep.as_str()),
                "{} imports missing {dep}",
                file.name()
            );
        }
    }
    assert!(names.contains(&"storyreel/common/v1/common.proto"));
    assert!(names.contains(&"google/protobuf/timestamp.proto"));
}

#[test]
fn streaming_shapes_match_the_api() {
    let set = descriptor_set();
    let method = |service: &str, rpc: &str| {
        set.file
            .iter()
            .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
            .find(|(pkg, s)| format!("{pkg}.{}", s.name()) == service)
            .and_then(|(_, s)| s.method.iter().find(|m| m.name() == rpc).cloned())
            .unwrap_or_else(|| panic!("{service}/{rpc} missing"))
    };
    let keyframe = method("storyreel.keyframe.v1.KeyframeService", "Generate");
    assert!(!keyframe.client_streaming() && keyframe.server_streaming());
    let ingest = method("storyreel.retrieval.v1.RetrievalService", "Ingest");
    assert!(ingest.client_streaming() && ingest.server_streaming());
    let story = method("storyreel.story_llm.v1.StoryLlmService", "Generate");
    assert!(!story.client_streaming() && !story.server_streaming());
}

fn tensor_ref() -> common::TensorRef {
    common::TensorRef {
        key: "storyreel:job-1:keyframe:3:latents".into(),
        dtype: common::Dtype::F16.into(),
        shape: vec![1, 4, 16, 64, 64],
        byte_len: 524_384,
        checksum: "xxh3-128:00112233445566778899aabbccddeeff".into(),
    }
}

#[test]
fn tensor_ref_round_trips() {
    let original = tensor_ref();
    let bytes = original.encode_to_vec();
    let decoded = common::TensorRef::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded, original);
    assert_eq!(decoded.dtype(), common::Dtype::F16);
}

#[test]
fn keyframe_request_round_trips() {
    let original = keyframe::GenerateRequest {
        context: Some(common::JobContext {
            job_id: "job-1".into(),
            scene_index: Some(3),
            seed: Some(42),
            deadline: Some(prost_types::Timestamp {
                seconds: 1_900_000_000,
                nanos: 5,
            }),
            model_pin: Some(common::ModelPin {
                version: "sd15-animatediff-v1.5".into(),
                endpoint_group: "canary".into(),
            }),
            request_id: "req-7".into(),
            bypass_cache: false,
        }),
        prompt: "the great wall at dawn, mist, cinematic".into(),
        negative_prompt: "blurry, low quality".into(),
        seed: Some(0),
        steps: Some(25),
        guidance_scale: Some(7.5),
        scheduler: Some(common::SchedulerConfig {
            scheduler: common::Scheduler::DpmSolverPp2m.into(),
            karras_sigmas: true,
        }),
        size: Some(common::FrameSize {
            width: 768,
            height: 448,
        }),
        n_frames: Some(16),
        reference_latents: Some(tensor_ref()),
        reference_strength: Some(0.6),
        preview_every: Some(5),
    };
    let bytes = original.encode_to_vec();
    let decoded = keyframe::GenerateRequest::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(decoded, original);
    // `optional` keeps an explicit zero apart from "unset".
    assert_eq!(decoded.seed, Some(0));
    assert_eq!(keyframe::GenerateRequest::default().seed, None);
    assert_eq!(decoded.size.map(|s| (s.width, s.height)), Some((768, 448)));
}
