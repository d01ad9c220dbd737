//! The video stages as a mesh for workspace-level tests and benchmarks: keyframe,
//! interpolation and decoder, each its own gRPC server on 127.0.0.1:0, sharing one real
//! redis-server, on the default models (`make models`).

use futures::StreamExt;
use std::sync::Arc;
use storyreel_decoder::{Decoder, DecoderConfig, DecoderStage};
use storyreel_interpolation::{InterpolateConfig, Interpolation, InterpolationStage};
use storyreel_keyframe::{Keyframe, KeyframeConfig, KeyframeStage};
use storyreel_proto::{
    common::{FrameSize, InterpolationSpace, JobContext, StageStats, TensorRef, UpsampleMode},
    decoder::{
        DecodeRequest, UpsampleRequest, decode_response, decoder_service_client::DecoderServiceClient,
        upsample_response,
    },
    interpolation::{
        InterpolateRequest, interpolate_response, interpolation_service_client::InterpolationServiceClient,
    },
    keyframe::{GenerateRequest, generate_response, keyframe_service_client::KeyframeServiceClient},
};
use storyreel_tensors::{StoreConfig, testing::RedisServer};
use storyreel_test_support::{TestServer, model_dir};
use tonic::transport::Channel;

/// A stage's output and what the stage says of its time.
pub type Output = (TensorRef, StageStats);

/// The three servers and their clients.
pub struct Mesh {
    keyframe: KeyframeServiceClient<Channel>,
    interpolation: InterpolationServiceClient<Channel>,
    decoder: DecoderServiceClient<Channel>,
    servers: Vec<TestServer>,
    _redis: RedisServer,
}

/// A scene-0 context of `job`, seed 21, the stage cache bypassed (every stage computes).
pub fn context(job: &str) -> Option<JobContext> {
    Some(JobContext {
        job_id: job.into(),
        scene_index: Some(0),
        seed: Some(21),
        bypass_cache: true,
        ..Default::default()
    })
}

const PROMPT: &str = "a lighthouse on a cliff at dusk";

impl Mesh {
    /// Starts the three stages on the default models.
    pub async fn start() -> Mesh {
        let redis = RedisServer::start().expect("redis-server starts (apt-get install redis-server)");
        let tensors: StoreConfig = redis.store_config();
        let keyframe_dir = model_dir("keyframe-tiny", "model_index.json");

        let config = KeyframeConfig {
            tensors: tensors.clone(),
            model_dir: keyframe_dir.clone(),
            ..KeyframeConfig::default()
        };
        let service = storyreel_keyframe::start_service(&config)
            .await
            .expect("keyframe starts");
        service.wait_ready().await.expect("the keyframe pipeline loads");
        let keyframe = TestServer::stage::<KeyframeStage>(config, service as Arc<dyn Keyframe>).await;

        let config = InterpolateConfig {
            tensors: tensors.clone(),
            model_dir: model_dir("interpolation-tiny", "interpolation_config.json"),
            text_encoder_dir: keyframe_dir.clone(),
            rife_dir: model_dir("rife-4.0", "flownet.safetensors"),
            ..InterpolateConfig::default()
        };
        let service = storyreel_interpolation::start_service(&config)
            .await
            .expect("interpolation starts");
        service.wait_ready().await.expect("the interpolation models load");
        let interpolation =
            TestServer::stage::<InterpolationStage>(config, service as Arc<dyn Interpolation>).await;

        let config = DecoderConfig {
            tensors,
            vae_dir: keyframe_dir.join("vae"),
            realesrgan_dir: model_dir("realesrgan", "realesr-animevideov3.safetensors"),
            ..DecoderConfig::default()
        };
        let service = storyreel_decoder::start_service(&config)
            .await
            .expect("decoder starts");
        service.wait_ready().await.expect("the decoder models load");
        let decoder = TestServer::stage::<DecoderStage>(config, service as Arc<dyn Decoder>).await;

        Mesh {
            keyframe: KeyframeServiceClient::new(keyframe.channel().await),
            interpolation: InterpolationServiceClient::new(interpolation.channel().await),
            decoder: DecoderServiceClient::new(decoder.channel().await),
            servers: vec![keyframe, interpolation, decoder],
            _redis: redis,
        }
    }

    /// keyframe Generate: `frames` key latents of `width` x `height` in `steps` steps.
    pub async fn key_latents(
        &mut self,
        job: &str,
        width: u32,
        height: u32,
        frames: u32,
        steps: u32,
    ) -> Output {
        let request = GenerateRequest {
            context: context(job),
            prompt: PROMPT.into(),
            steps: Some(steps),
            size: Some(FrameSize { width, height }),
            n_frames: Some(frames),
            ..Default::default()
        };
        let mut events = self.keyframe.generate(request).await.unwrap().into_inner();
        while let Some(message) = events.next().await {
            if let Some(generate_response::Event::Result(r)) = message.unwrap().event {
                return (r.latents.unwrap(), r.stats.unwrap());
            }
        }
        panic!("keyframe gave no result");
    }

    /// interpolation Interpolate, 4x, 2 steps per pass in LATENT space.
    pub async fn interpolate(
        &mut self,
        job: &str,
        key_frames: TensorRef,
        space: InterpolationSpace,
    ) -> Output {
        let request = InterpolateRequest {
            context: context(job),
            key_frames: Some(key_frames),
            factor: Some(4),
            space: space.into(),
            prompt: PROMPT.into(),
            steps: Some(2),
            ..Default::default()
        };
        let mut events = self
            .interpolation
            .interpolate(request)
            .await
            .unwrap()
            .into_inner();
        while let Some(message) = events.next().await {
            if let Some(interpolate_response::Event::Result(r)) = message.unwrap().event {
                return (r.frames.unwrap(), r.stats.unwrap());
            }
        }
        panic!("interpolation gave no result");
    }

    /// decoder Decode, 4 frames per VAE pass.
    pub async fn decode(&mut self, job: &str, latents: TensorRef) -> Output {
        let request = DecodeRequest {
            context: context(job),
            latents: Some(latents),
            slice_frames: Some(4),
        };
        let mut events = self.decoder.decode(request).await.unwrap().into_inner();
        while let Some(message) = events.next().await {
            if let Some(decode_response::Event::Result(r)) = message.unwrap().event {
                return (r.pixels.unwrap(), r.stats.unwrap());
            }
        }
        panic!("decode gave no result");
    }

    /// decoder Upsample, Real-ESRGAN x2 in 256-pixel tiles.
    pub async fn upsample(&mut self, job: &str, pixels: TensorRef) -> Output {
        let request = UpsampleRequest {
            context: context(job),
            pixels: Some(pixels),
            mode: UpsampleMode::RealesrganX2.into(),
            tile_size: Some(256),
            tile_overlap: Some(16),
            ..Default::default()
        };
        let mut events = self.decoder.upsample(request).await.unwrap().into_inner();
        while let Some(message) = events.next().await {
            if let Some(upsample_response::Event::Result(r)) = message.unwrap().event {
                return (r.pixels.unwrap(), r.stats.unwrap());
            }
        }
        panic!("upsample gave no result");
    }

    /// The whole chain for one scene of 2 key frames: the final frames.
    pub async fn chain(
        &mut self,
        job: &str,
        width: u32,
        height: u32,
        space: InterpolationSpace,
    ) -> TensorRef {
        let (keys, _) = self.key_latents(job, width, height, 2, 2).await;
        let (frames, _) = match space {
            InterpolationSpace::Pixel => {
                let (key_pixels, _) = self.decode(job, keys).await;
                self.interpolate(job, key_pixels, space).await
            }
            _ => {
                let (latents, _) = self.interpolate(job, keys, space).await;
                self.decode(job, latents).await
            }
        };
        self.upsample(job, frames).await.0
    }

    pub async fn shutdown(self) {
        for server in self.servers {
            server.shutdown().await;
        }
    }
}
