//! The thin gRPC adapter: validates each call (INVALID_ARGUMENT naming the field and the
//! limit, RESOURCE_EXHAUSTED past the memory budget), begins its context (one deadline
//! over the whole stream, span, latency metric) and runs it on [`crate::Decoder`].

use crate::{
    DecoderStage,
    service::Upsampler,
    validation::{validate_decode, validate_encode, validate_upsample},
};
use futures::StreamExt;
use storyreel_proto::{
    common,
    decoder::{
        DecodeRequest, DecodeResponse, DecodeResult, EncodeRequest, EncodeResponse, UpsampleRequest,
        UpsampleResponse, UpsampleResult, decode_response, decoder_service_server::DecoderService,
        upsample_response,
    },
};
use storyreel_runtime::{tensor_ref, to_status};
use storyreel_stage::{
    Adapter,
    outputs::{StageEvent as DecoderEvent, StageOutput as Output},
};
use tonic::{Request, Response, Status};

/// The tonic service over any [`crate::Decoder`].
#[derive(Clone)]
pub struct DecoderGrpc(pub Adapter<DecoderStage>);

type Events<T> = futures::stream::BoxStream<'static, Result<T, Status>>;

fn progress(
    stage: common::Stage,
    done: u32,
    total: u32,
    unit: &str,
    scene_index: Option<u32>,
) -> common::Progress {
    common::Progress {
        stage: stage as i32,
        step: done,
        total_steps: total,
        message: format!("{done} of {total} {unit}"),
        fraction: if total == 0 {
            0.0
        } else {
            done as f32 / total as f32
        },
        scene_index,
    }
}

/// An output's tensor ref, model and stats on the wire.
fn parts(
    output: Output,
) -> (
    Option<common::TensorRef>,
    Option<common::ModelInfo>,
    Option<common::StageStats>,
) {
    (
        Some(tensor_ref::to_wire(&output.tensor)),
        output.model.map(Into::into),
        Some(output.stats.into()),
    )
}

#[tonic::async_trait]
impl DecoderService for DecoderGrpc {
    async fn encode(&self, request: Request<EncodeRequest>) -> Result<Response<EncodeResponse>, Status> {
        let adapter = &self.0;
        let (metadata, _, message) = request.into_parts();
        let mut request = validate_encode(message, &adapter.config).map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("encode", &metadata, &request.job, &mut request.deadline)?;
        let output = context.unary(adapter.service.encode(request)).await?;
        let (latents, model, stats) = parts(output);
        Ok(Response::new(EncodeResponse {
            latents,
            model,
            stats,
        }))
    }

    type DecodeStream = Events<DecodeResponse>;

    async fn decode(&self, request: Request<DecodeRequest>) -> Result<Response<Self::DecodeStream>, Status> {
        let adapter = &self.0;
        let (metadata, _, message) = request.into_parts();
        let mut request = validate_decode(message, &adapter.config).map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("decode", &metadata, &request.job, &mut request.deadline)?;
        let (service, scene) = (adapter.service.clone(), request.job.scene_index);
        let events = context
            .open_stream(async move {
                let events = service.decode(request).await?;
                Ok::<_, crate::DecoderError>(events.filter_map(move |event| {
                    let event = match event {
                        Err(err) => Some(Err(err)),
                        Ok(DecoderEvent::Progress { done, total }) => {
                            Some(Ok(decode_response::Event::Progress(progress(
                                common::Stage::Decode,
                                done,
                                total,
                                "frames",
                                scene,
                            ))))
                        }
                        Ok(DecoderEvent::Finished(output)) => {
                            let (pixels, model, stats) = parts(*output);
                            Some(Ok(decode_response::Event::Result(DecodeResult {
                                pixels,
                                model,
                                stats,
                            })))
                        }
                        // the decoder makes no previews
                        Ok(DecoderEvent::Preview { .. }) => None,
                    };
                    futures::future::ready(
                        event.map(|e| e.map(|event| DecodeResponse { event: Some(event) })),
                    )
                }))
            })
            .await?;
        Ok(Response::new(events))
    }

    type UpsampleStream = Events<UpsampleResponse>;

    async fn upsample(
        &self,
        request: Request<UpsampleRequest>,
    ) -> Result<Response<Self::UpsampleStream>, Status> {
        let adapter = &self.0;
        let (metadata, _, message) = request.into_parts();
        let service = adapter.service.clone();
        let mut request = validate_upsample(message, &adapter.config, &|text| service.count_tokens(text))
            .map_err(|e| to_status(&e))?;
        // the diffusion upscaler reports denoising steps, the others frames
        let unit = match request.upsampler {
            Upsampler::Diffusion(_) => "denoising steps",
            _ => "frames",
        };
        let context =
            adapter
                .calls
                .begin_request("upsample", &metadata, &request.job, &mut request.deadline)?;
        let (service, scene) = (adapter.service.clone(), request.job.scene_index);
        let events = context
            .open_stream(async move {
                let events = service.upsample(request).await?;
                Ok::<_, crate::DecoderError>(events.filter_map(move |event| {
                    let event = match event {
                        Err(err) => Some(Err(err)),
                        Ok(DecoderEvent::Progress { done, total }) => {
                            Some(Ok(upsample_response::Event::Progress(progress(
                                common::Stage::Upsample,
                                done,
                                total,
                                unit,
                                scene,
                            ))))
                        }
                        Ok(DecoderEvent::Finished(output)) => {
                            let (pixels, model, stats) = parts(*output);
                            Some(Ok(upsample_response::Event::Result(UpsampleResult {
                                pixels,
                                model,
                                stats,
                            })))
                        }
                        // the decoder makes no previews
                        Ok(DecoderEvent::Preview { .. }) => None,
                    };
                    futures::future::ready(
                        event.map(|e| e.map(|event| UpsampleResponse { event: Some(event) })),
                    )
                }))
            })
            .await?;
        Ok(Response::new(events))
    }
}
