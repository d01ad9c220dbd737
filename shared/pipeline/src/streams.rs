//! The streamed stage calls (keyframe, interpolation, decode, upsample) all answer with
//! progress, maybe previews, and one result; [`drain`] reads such a stream to its
//! result, passing progress and previews on.

use crate::{
    executor::Events,
    progress::{Event, ProgressSink, Step},
};
use futures::StreamExt;
use storyreel_proto::{common, decoder, interpolation, keyframe};
use tonic::Status;

/// One event of a streamed stage call.
pub enum Piece<T> {
    Progress(common::Progress),
    Preview(keyframe::Preview),
    Result(T),
    Empty,
}

/// A response message of a streamed stage call.
pub trait Streamed: Send + 'static {
    type Result;
    fn piece(self) -> Piece<Self::Result>;
}

impl Streamed for keyframe::GenerateResponse {
    type Result = keyframe::GenerateResult;
    fn piece(self) -> Piece<Self::Result> {
        use keyframe::generate_response::Event as E;
        match self.event {
            Some(E::Progress(p)) => Piece::Progress(p),
            Some(E::Preview(p)) => Piece::Preview(p),
            Some(E::Result(r)) => Piece::Result(r),
            None => Piece::Empty,
        }
    }
}

impl Streamed for interpolation::InterpolateResponse {
    type Result = interpolation::InterpolateResult;
    fn piece(self) -> Piece<Self::Result> {
        use interpolation::interpolate_response::Event as E;
        match self.event {
            Some(E::Progress(p)) => Piece::Progress(p),
            Some(E::Result(r)) => Piece::Result(r),
            None => Piece::Empty,
        }
    }
}

impl Streamed for decoder::DecodeResponse {
    type Result = decoder::DecodeResult;
    fn piece(self) -> Piece<Self::Result> {
        use decoder::decode_response::Event as E;
        match self.event {
            Some(E::Progress(p)) => Piece::Progress(p),
            Some(E::Result(r)) => Piece::Result(r),
            None => Piece::Empty,
        }
    }
}

impl Streamed for decoder::UpsampleResponse {
    type Result = decoder::UpsampleResult;
    fn piece(self) -> Piece<Self::Result> {
        use decoder::upsample_response::Event as E;
        match self.event {
            Some(E::Progress(p)) => Piece::Progress(p),
            Some(E::Result(r)) => Piece::Result(r),
            None => Piece::Empty,
        }
    }
}

/// Reads `events` to its result. A stream that ends without one is an INTERNAL error.
pub async fn drain<R: Streamed>(
    mut events: Events<R>,
    step: Step,
    scene: u32,
    sink: &dyn ProgressSink,
) -> Result<R::Result, Status> {
    while let Some(event) = events.next().await {
        match event?.piece() {
            Piece::Progress(p) => sink.emit(Event::Progress {
                step,
                scene: Some(scene),
                done: p.step,
                total: p.total_steps,
            }),
            Piece::Preview(preview) => {
                if let Some(image) = preview
                    .image
                    .as_ref()
                    .and_then(|w| storyreel_runtime::tensor_ref::from_wire("preview.image", w).ok())
                {
                    sink.emit(Event::Preview {
                        scene,
                        step: preview.step,
                        image,
                    });
                }
            }
            Piece::Result(result) => return Ok(result),
            Piece::Empty => {}
        }
    }
    Err(Status::internal(format!(
        "the {} stream ended without a result",
        step.as_str()
    )))
}
