//! The thin gRPC adapter: validates a Generate (INVALID_ARGUMENT naming the field and the
//! limit, RESOURCE_EXHAUSTED past the memory budget), begins the call's context (one
//! deadline over the whole stream, span, latency metric), and streams [`Keyframe`]'s
//! progress and result.

use crate::{KeyframeStage, service::steps_run, validation::validate_generate};
use futures::StreamExt;
use storyreel_proto::{
    common,
    keyframe::{
        GenerateRequest, GenerateResponse, GenerateResult, Preview, generate_response::Event,
        keyframe_service_server::KeyframeService,
    },
};
use storyreel_runtime::{tensor_ref, to_status};
use storyreel_stage::{
    Adapter,
    outputs::{StageEvent, StageOutput},
};
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
        let done = Done {
            scene_index: request.job.scene_index,
            seed: request.seed,
            steps_run: steps_run(&request),
        };
        let events = context
            .open_stream(async move {
                let events = service.generate(request).await?;
                Ok::<_, crate::KeyframeError>(events.map(move |e| e.map(|e| done.response(e))))
            })
            .await?;
        Ok(Response::new(events))
    }
}

/// What the adapter knows of a call's result before it runs.
#[derive(Clone, Copy)]
struct Done {
    scene_index: Option<u32>,
    seed: u64,
    steps_run: u32,
}

impl Done {
    fn response(self, event: StageEvent) -> GenerateResponse {
        let event = match event {
            StageEvent::Progress { done, total } => Event::Progress(common::Progress {
                stage: common::Stage::Keyframe as i32,
                step: done,
                total_steps: total,
                message: format!("denoising step {done} of {total}"),
                fraction: if total == 0 {
                    0.0
                } else {
                    done as f32 / total as f32
                },
                scene_index: self.scene_index,
            }),
            StageEvent::Preview { step, image } => Event::Preview(Preview {
                step,
                image: Some(tensor_ref::to_wire(&image)),
            }),
            StageEvent::Finished(output) => Event::Result(self.result(*output)),
        };
        GenerateResponse { event: Some(event) }
    }

    fn result(self, output: StageOutput) -> GenerateResult {
        GenerateResult {
            latents: Some(tensor_ref::to_wire(&output.tensor)),
            model: output.model.map(Into::into),
            seed: self.seed,
            steps_run: self.steps_run,
            stats: Some(output.stats.into()),
        }
    }
}
