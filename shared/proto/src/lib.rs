//! The storyreel v1 gRPC API: messages, tonic clients and servers generated from the
//! `.proto` files under `proto/` at the repository root (see build.rs), plus the file
//! descriptor set for `tonic-reflection`.
//!
//! Modules mirror the protobuf packages (`storyreel.keyframe.v1` is
//! [`storyreel::keyframe::v1`]); the short aliases below name the same modules.

/// Generated code, one module per protobuf package.
pub mod storyreel {
    /// `storyreel.common.*`
    pub mod common {
        /// `storyreel.common.v1`: TensorRef, JobContext, ModelInfo, Progress, shared enums.
        pub mod v1 {
            tonic::include_proto!("storyreel.common.v1");
        }
    }
    /// `storyreel.gateway.*`
    pub mod gateway {
        /// `storyreel.gateway.v1`: the public job API.
        pub mod v1 {
            tonic::include_proto!("storyreel.gateway.v1");
        }
    }
    /// `storyreel.story_llm.*`
    pub mod story_llm {
        /// `storyreel.story_llm.v1`: title -> scenes.
        pub mod v1 {
            tonic::include_proto!("storyreel.story_llm.v1");
        }
    }
    /// `storyreel.prompt_rewriter.*`
    pub mod prompt_rewriter {
        /// `storyreel.prompt_rewriter.v1`: scenes -> prompts, keywords.
        pub mod v1 {
            tonic::include_proto!("storyreel.prompt_rewriter.v1");
        }
    }
    /// `storyreel.retrieval.*`
    pub mod retrieval {
        /// `storyreel.retrieval.v1`: reference clip search and ingest.
        pub mod v1 {
            tonic::include_proto!("storyreel.retrieval.v1");
        }
    }
    /// `storyreel.keyframe.*`
    pub mod keyframe {
        /// `storyreel.keyframe.v1`: prompt -> key-frame latents.
        pub mod v1 {
            tonic::include_proto!("storyreel.keyframe.v1");
        }
    }
    /// `storyreel.interpolation.*`
    pub mod interpolation {
        /// `storyreel.interpolation.v1`: key frames -> 4x / 16x frames.
        pub mod v1 {
            tonic::include_proto!("storyreel.interpolation.v1");
        }
    }
    /// `storyreel.decoder.*`
    pub mod decoder {
        /// `storyreel.decoder.v1`: VAE encode/decode, upsampling.
        pub mod v1 {
            tonic::include_proto!("storyreel.decoder.v1");
        }
    }
    /// `storyreel.tts.*`
    pub mod tts {
        /// `storyreel.tts.v1`: narration audio.
        pub mod v1 {
            tonic::include_proto!("storyreel.tts.v1");
        }
    }
}

pub use storyreel::common::v1 as common;
pub use storyreel::decoder::v1 as decoder;
pub use storyreel::gateway::v1 as gateway;
pub use storyreel::interpolation::v1 as interpolation;
pub use storyreel::keyframe::v1 as keyframe;
pub use storyreel::prompt_rewriter::v1 as prompt_rewriter;
pub use storyreel::retrieval::v1 as retrieval;
pub use storyreel::story_llm::v1 as story_llm;
pub use storyreel::tts::v1 as tts;

/// Encoded `google.protobuf.FileDescriptorSet` of every storyreel proto and its
/// imports, for `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/storyreel_descriptor.bin"));

/// Fully qualified names of the eight v1 services, e.g. for health status registration.
pub const SERVICE_NAMES: [&str; 8] = [
    "storyreel.gateway.v1.GatewayService",
    "storyreel.story_llm.v1.StoryLlmService",
    "storyreel.prompt_rewriter.v1.PromptRewriterService",
    "storyreel.retrieval.v1.RetrievalService",
    "storyreel.keyframe.v1.KeyframeService",
    "storyreel.interpolation.v1.InterpolationService",
    "storyreel.decoder.v1.DecoderService",
    "storyreel.tts.v1.TtsService",
];
