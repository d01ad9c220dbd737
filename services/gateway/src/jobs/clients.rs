//! The gateway's channels to the stage services: one lazily connecting channel per
//! stage and endpoint group, each call carrying the trace context and the stage API key.

use crate::gateway_config::GatewayConfig;
use std::collections::BTreeMap;
use storyreel_runtime::client::{ClientConfig, ClientError, ClientInterceptor, channel};
use tonic::{Status, service::interceptor::InterceptedService, transport::Channel};

/// A channel with the gateway's interceptor (trace context, API key).
pub type Intercepted = InterceptedService<Channel, ClientInterceptor>;

/// Channels by (stage config name, group).
#[derive(Clone)]
pub struct StageClients {
    channels: BTreeMap<(String, String), Intercepted>,
}

impl StageClients {
    pub fn new(config: &GatewayConfig) -> Result<Self, ClientError> {
        let mut channels = BTreeMap::new();
        for (stage, groups) in &config.stages {
            for group in groups {
                let client = ClientConfig {
                    endpoint: group.endpoint.clone(),
                    ..config.stage_client.clone()
                };
                let intercepted = InterceptedService::new(channel(&client)?, ClientInterceptor::new(&client));
                channels.insert((stage.clone(), group.group.clone()), intercepted);
            }
        }
        Ok(Self { channels })
    }

    /// The channel of `stage` in `group`; a group the config no longer has is
    /// UNAVAILABLE (retried: the replica that has it, or a restored config, answers).
    pub fn get(&self, stage: &str, group: &str) -> Result<Intercepted, Status> {
        self.channels
            .get(&(stage.to_string(), group.to_string()))
            .cloned()
            .ok_or_else(|| {
                Status::unavailable(format!(
                    "this gateway has no endpoint group `{group}` for the {stage} stage"
                ))
            })
    }
}
