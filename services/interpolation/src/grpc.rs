//! The thin gRPC adapter: validates an Interpolate (INVALID_ARGUMENT naming the field and
//! the limit, RESOURCE_EXHAUSTED past the memory budget), begins its context (one deadline
//! over the whole stream, span, latency metric) and streams [`crate::Interpolation`]'s
//! progress and result.

use crate::{InterpolationStage, service::Space, validation::validate_interpolate};
use futures::StreamExt;
use storyreel_proto::{
    common,
    interpolation::{
        InterpolateRequest, InterpolateResponse, InterpolateResult, interpolate_response::Event,
        interpolation_service_server::InterpolationService,
    },
};
use storyreel_runtime::{tensor_ref, to_status};
use storyreel_stage::{Adapter, outputs::StageEvent};
use tonic::{Request, Response, Status};

/// The tonic service over any [`crate::Interpolation`].
#[derive(Clone)]
pub struct InterpolationGrpc(pub Adapter<InterpolationStage>);

#[tonic::async_trait]
impl InterpolationService for InterpolationGrpc {
    type InterpolateStream = futures::stream::BoxStream<'static, Result<InterpolateResponse, Status>>;

    async fn interpolate(
        &self,
        request: Request<InterpolateRequest>,
    ) -> Result<Response<Self::InterpolateStream>, Status> {
        let adapter = &self.0;
        let (metadata, _, message) = request.into_parts();
        let service = adapter.service.clone();
        let mut request = validate_interpolate(message, &adapter.config, &|text| service.count_tokens(text))
            .map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("interpolate", &metadata, &request.job, &mut request.deadline)?;
        let scene_index = request.job.scene_index;
        // the seed reported: the latent model's; the pixel path draws no noise
        let seed = if request.space == Space::Latent {
            request.seed
        } else {
            0
        };
        let events = context
            .open_stream(async move {
                let events = service.interpolate(request).await?;
                Ok::<_, crate::InterpolationError>(events.filter_map(move |event| {
                    let event = match event {
                        Err(err) => Some(Err(err)),
                        Ok(StageEvent::Progress { done, total }) => {
                            Some(Ok(Event::Progress(common::Progress {
                                stage: common::Stage::Interpolation as i32,
                                step: done,
                                total_steps: total,
                                message: format!("{done} of {total}"),
                                fraction: if total == 0 {
                                    0.0
                                } else {
                                    done as f32 / total as f32
                                },
                                scene_index,
                            })))
                        }
                        Ok(StageEvent::Finished(output)) => Some(Ok(Event::Result(InterpolateResult {
                            frames: Some(tensor_ref::to_wire(&output.tensor)),
                            model: output.model.map(Into::into),
                            seed,
                            stats: Some(output.stats.into()),
                        }))),
                        // interpolation makes no previews
                        Ok(StageEvent::Preview { .. }) => None,
                    };
                    futures::future::ready(
                        event.map(|e| e.map(|event| InterpolateResponse { event: Some(event) })),
                    )
                }))
            })
            .await?;
        Ok(Response::new(events))
    }
}
