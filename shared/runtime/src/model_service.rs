//! `storyreel.common.v1.ModelService`: every stage service says which model it serves
//! (UNAVAILABLE until it has loaded one), so that a caller can choose by it.

use crate::model::ModelState;
use storyreel_proto::common::{
    GetModelRequest, GetModelResponse,
    model_service_server::{ModelService, ModelServiceServer},
};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// Answers GetModel from the model worker's state.
pub struct ModelServiceImpl {
    state: watch::Receiver<ModelState>,
}

impl ModelServiceImpl {
    pub fn server(state: watch::Receiver<ModelState>) -> ModelServiceServer<Self> {
        ModelServiceServer::new(Self { state })
    }
}

#[tonic::async_trait]
impl ModelService for ModelServiceImpl {
    async fn get_model(&self, _: Request<GetModelRequest>) -> Result<Response<GetModelResponse>, Status> {
        match &*self.state.borrow() {
            ModelState::Ready(info) => Ok(Response::new(GetModelResponse {
                model: Some(info.clone().into()),
            })),
            ModelState::Loading => Err(Status::unavailable("the model is still loading")),
            ModelState::Failed(reason) => {
                Err(Status::unavailable(format!("the model did not load: {reason}")))
            }
        }
    }
}
