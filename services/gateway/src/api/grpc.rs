//! The gRPC adapter of [`GatewayService`]: authentication from metadata, errors to
//! codes in one table, and the two streams (WatchJob, GetArtifact).

use super::{
    auth::{ApiKeys, AuthError, Caller},
    service::{ApiError, GatewayService},
};
use futures::{Stream, StreamExt};
use std::{pin::Pin, sync::Arc};
use storyreel_proto::gateway::{
    CancelJobRequest, CancelJobResponse, CreateVideoRequest, CreateVideoResponse, FindReferencesRequest,
    FindReferencesResponse, GenerateTextsRequest, GenerateTextsResponse, GetArtifactRequest,
    GetArtifactResponse, GetJobRequest, GetJobResponse, GetOptionsRequest, GetOptionsResponse,
    ListJobsRequest, ListJobsResponse, WatchJobRequest, WatchJobResponse,
    gateway_service_server::GatewayService as GatewayApi,
};
use tonic::{Request, Response, Status};

/// The error table of the API.
pub fn status(error: ApiError) -> Status {
    match error {
        ApiError::Stage(status) => status,
        other => Status::new(super::codes::grpc_code(&other), other.to_string()),
    }
}

pub struct GatewayGrpc {
    pub service: Arc<GatewayService>,
    pub keys: ApiKeys,
}

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl GatewayGrpc {
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.keys.authenticate(authorization).map_err(|e| match e {
            AuthError::Missing | AuthError::Invalid => Status::unauthenticated(e.to_string()),
        })
    }
}

#[tonic::async_trait]
impl GatewayApi for GatewayGrpc {
    async fn create_video(
        &self,
        request: Request<CreateVideoRequest>,
    ) -> Result<Response<CreateVideoResponse>, Status> {
        let caller = self.caller(&request)?;
        let response = self
            .service
            .create_video(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<GetJobResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self
            .service
            .get_job(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(GetJobResponse { job: Some(job) }))
    }

    type WatchJobStream = Streamed<WatchJobResponse>;

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = self.caller(&request)?;
        let events = self
            .service
            .watch_job(&caller, request.into_inner())
            .await
            .map_err(status)?;
        let stream = events.map(|event| {
            event
                .map(|event| WatchJobResponse { event: Some(event) })
                .map_err(status)
        });
        Ok(Response::new(stream.boxed()))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<CancelJobResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self
            .service
            .cancel_job(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(CancelJobResponse { job: Some(job) }))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let caller = self.caller(&request)?;
        let response = self
            .service
            .list_jobs(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    type GenerateTextsStream = Streamed<GenerateTextsResponse>;

    async fn generate_texts(
        &self,
        request: Request<GenerateTextsRequest>,
    ) -> Result<Response<Self::GenerateTextsStream>, Status> {
        let caller = self.caller(&request)?;
        let texts = self
            .service
            .generate_texts(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(texts.map(|m| m.map_err(status)).boxed()))
    }

    async fn find_references(
        &self,
        request: Request<FindReferencesRequest>,
    ) -> Result<Response<FindReferencesResponse>, Status> {
        let caller = self.caller(&request)?;
        let response = self
            .service
            .find_references(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn get_options(
        &self,
        request: Request<GetOptionsRequest>,
    ) -> Result<Response<GetOptionsResponse>, Status> {
        let caller = self.caller(&request)?;
        let response = self
            .service
            .get_options(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    type GetArtifactStream = Streamed<GetArtifactResponse>;

    async fn get_artifact(
        &self,
        request: Request<GetArtifactRequest>,
    ) -> Result<Response<Self::GetArtifactStream>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let chunk = request.chunk_size.unwrap_or(1 << 20);
        if !(4096..=4 << 20).contains(&chunk) {
            return Err(Status::invalid_argument(format!(
                "`chunk_size` must be 4096-4194304, got {chunk}"
            )));
        }
        let artifact = self
            .service
            .artifact(&caller, &request.job_id, &request.name)
            .await
            .map_err(status)?;
        if request.offset > artifact.size_bytes {
            return Err(Status::invalid_argument(format!(
                "`offset` must be 0-{}, got {}",
                artifact.size_bytes, request.offset
            )));
        }
        let store = self.service.artifacts().clone();
        let job_id = request.job_id.clone();
        let stream = async_stream(move |tx| async move {
            let mut offset = request.offset;
            let mut first = Some(artifact.clone());
            loop {
                let end = (offset + u64::from(chunk)).min(artifact.size_bytes);
                let data = if end > offset {
                    match store.read(&job_id, &artifact.name, offset..end).await {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            let _ = tx.send(Err(status(e.into()))).await;
                            return;
                        }
                    }
                } else {
                    bytes::Bytes::new()
                };
                let message = GetArtifactResponse {
                    artifact: first.take(),
                    offset,
                    data,
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
                offset = end;
                if offset >= artifact.size_bytes {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A stream fed by a task through a small channel (backpressure: the task waits for the
/// reader; a reader that goes away stops it).
fn async_stream<T, F, Fut>(produce: F) -> Streamed<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}
