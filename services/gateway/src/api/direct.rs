//! Stage calls the API makes itself, outside a job (the texts, the references, the
//! voices): routed like a job's calls (the endpoint-group weights, the model pins), with
//! the stage timeout, and a stage's failure passed on with its own code. Each request
//! holds one slot of the caller's concurrent-job quota while it runs: it keeps the same
//! language models busy that a job does.

use super::{
    auth::Caller,
    service::{ApiError, GatewayService},
};
use crate::jobs::activities::now_ms;
use crate::jobs::clients::Intercepted;
use std::{collections::BTreeMap, time::Duration};
use storyreel_proto::gateway::StageModelPin;

/// The endpoint group of each stage for one direct call sequence.
pub struct Routes(BTreeMap<String, String>);

/// The longest a direct request holds its quota slot if its release is lost.
const SLOT_TTL_MS: i64 = 10 * 60 * 1000;

impl GatewayService {
    /// Takes a slot of `caller`'s quota for the direct request `id`.
    pub async fn admit_direct(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        let now = now_ms();
        self.quota
            .admit(
                &caller.owner,
                id,
                now,
                now + SLOT_TTL_MS,
                caller.max_concurrent_jobs,
            )
            .await?;
        Ok(())
    }

    /// Gives the slot of `id` back.
    pub async fn release_direct(&self, caller: &Caller, id: &str) {
        if let Err(e) = self.quota.release(&caller.owner, id).await {
            tracing::warn!(error = %e, "releasing a quota slot");
        }
    }

    /// Routes for the calls made for `id` (a fresh id per request: the weights decide).
    pub fn direct_routes(&self, id: &str, pins: &[StageModelPin]) -> Result<Routes, ApiError> {
        Ok(Routes(self.router.draw(id, pins)?))
    }

    /// The channel to `stage` (its config name, `story_llm`) for these routes.
    pub fn direct_channel(&self, routes: &Routes, stage: &str) -> Result<Intercepted, ApiError> {
        let group = routes.0.get(stage).map(String::as_str).unwrap_or("stable");
        self.stages.get(stage, group).map_err(ApiError::Stage)
    }

    /// A request to `stage` with the stage's timeout.
    pub fn direct_request<T>(&self, stage: &str, message: T) -> tonic::Request<T> {
        let seconds = self
            .config
            .stage_timeouts_s
            .get(stage)
            .copied()
            .unwrap_or(self.config.stage_timeout_s);
        let mut request = tonic::Request::new(message);
        request.set_timeout(Duration::from_secs(seconds));
        request
    }
}
