//! The thin gRPC adapter: validates a Generate (INVALID_ARGUMENT naming the field and the
//! limit, RESOURCE_EXHAUSTED past the memory budget), begins the call's context (one
//! deadline over the whole stream, span, latency metric), and streams [`Keyframe`]'s
//! progress and result.

use crate::{
    KeyframeStage,
    service::{KeyframeEvent, KeyframeResult},
    validation::validate_generate,
};
use futures::StreamExt;
use storyreel_proto::{
    common,
    keyframe::{
        GenerateRequest, GenerateResponse, GenerateResult, generate_response::Event,
        keyframe_service_server::KeyframeService,
    },
};
use storyreel_runtime::{tensor_ref, to_status};
use storyreel_stage::Adapter;
use tonic::{Request, Response, Status};

/// The tonic service over any [`crate::Keyframe`].
#[derive(Clone)]
pub struct KeyframeGrpc(pub Adapter<KeyframeStage>);

#[tonic::async_trait]
impl KeyframeService for KeyframeGrpc {
    type GenerateStream = futures::stream::BoxStream<'static, Result<GenerateResponse, Status>>;

    async fn generate(
        &self,
        request: Request<GenerateRequest>,
    ) -> Result<Response<Self::GenerateStream>, Status> {
        let adapter = &self.0;
        let (metadata, _, message) = request.into_parts();
        let service = adapter.service.clone();
        let mut request = validate_generate(message, &adapter.config, &|text| service.count_tokens(text))
            .map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("generate", &metadata, &request.job, &mut request.deadline)?;
        let scene = request.job.scene_index;
        let events = context
            .open_stream(async move {
                let events = service.generate(request).await?;
                Ok::<_, crate::KeyframeError>(events.map(move |e| e.map(|e| response(e, scene))))
            })
            .await?;
        Ok(Response::new(events))
    }
}

fn response(event: KeyframeEvent, scene_index: Option<u32>) -> GenerateResponse {
    let event = match event {
        KeyframeEvent::Progress { step, total } => Event::Progress(common::Progress {
            stage: common::Stage::Keyframe as i32,
            step,
            total_steps: total,
            message: format!("denoising step {step} of {total}"),
            fraction: if total == 0 {
                0.0
            } else {
                step as f32 / total as f32
            },
            scene_index,
        }),
        KeyframeEvent::Finished(result) => Event::Result((*result).into()),
    };
    GenerateResponse { event: Some(event) }
}

impl From<KeyframeResult> for GenerateResult {
    fn from(r: KeyframeResult) -> Self {
        GenerateResult {
            latents: Some(tensor_ref::to_wire(&r.latents)),
            model: Some(r.model.into()),
            seed: r.seed,
            steps_run: r.steps_run,
            stats: Some(r.stats.into()),
        }
    }
}
