//! Canary routing: each stage has weighted endpoint groups (`stable`, `canary`); a job
//! draws one group per stage when it is created, and the draw is part of the job (its
//! workflow input), so every call of the job, on any replica, after any restart, goes to
//! the same group. The draw is a hash of the job id and the stage, so it needs no state
//! and spreads jobs by the weights. A model pin routes the stage to the group that
//! serves the pinned version (or to the pinned group by name).

use crate::gateway_config::{EndpointGroup, STAGES};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use storyreel_proto::gateway::StageModelPin;
use storyreel_runtime::ValidationError;

use crate::jobs::executor::service_of_stage;

#[derive(Debug, Clone)]
pub struct Router {
    stages: BTreeMap<String, Vec<EndpointGroup>>,
}

impl Router {
    pub fn new(stages: &BTreeMap<String, Vec<EndpointGroup>>) -> Self {
        Self {
            stages: stages.clone(),
        }
    }

    /// The group of every stage for `job_id`.
    pub fn draw(
        &self,
        job_id: &str,
        pins: &[StageModelPin],
    ) -> Result<BTreeMap<String, String>, ValidationError> {
        let mut pinned: BTreeMap<&str, &StageModelPin> = BTreeMap::new();
        for (i, pin) in pins.iter().enumerate() {
            let stage = storyreel_proto::common::Stage::try_from(pin.stage)
                .ok()
                .map(service_of_stage)
                .filter(|s| *s != "gateway")
                .ok_or_else(|| {
                    ValidationError::new(format!("spec.model_pins[{i}].stage"), "must name a stage")
                })?;
            if pinned.insert(stage, pin).is_some() {
                return Err(ValidationError::new(
                    format!("spec.model_pins[{i}]"),
                    format!("at most one pin per stage; {stage} is pinned twice"),
                ));
            }
        }
        let mut routes = BTreeMap::new();
        for (stage, _) in STAGES {
            let groups = self.stages.get(stage).map(Vec::as_slice).unwrap_or_default();
            let group = match pinned.get(stage).and_then(|p| p.pin.as_ref()) {
                Some(pin) => groups
                    .iter()
                    .find(|g| {
                        (!pin.version.is_empty() && g.version == pin.version)
                            || (pin.version.is_empty() && g.group == pin.endpoint_group)
                    })
                    .map(|g| g.group.clone())
                    .ok_or_else(|| {
                        ValidationError::new(
                            "spec.model_pins",
                            format!(
                                "no endpoint group of the {stage} stage serves version `{}` / group `{}`",
                                pin.version, pin.endpoint_group
                            ),
                        )
                    })?,
                None => weighted(job_id, stage, groups),
            };
            routes.insert(stage.to_string(), group);
        }
        Ok(routes)
    }

    /// The version an endpoint group is configured to serve (empty: not said).
    pub fn version(&self, stage: &str, group: &str) -> String {
        self.stages
            .get(stage)
            .and_then(|gs| gs.iter().find(|g| g.group == group))
            .map(|g| g.version.clone())
            .unwrap_or_default()
    }
}

/// A group by weight, from a hash of (job, stage): uniform in [0, total).
fn weighted(job_id: &str, stage: &str, groups: &[EndpointGroup]) -> String {
    let total: u64 = groups.iter().map(|g| u64::from(g.weight)).sum();
    if total == 0 {
        return groups
            .first()
            .map(|g| g.group.clone())
            .unwrap_or_else(|| "stable".into());
    }
    let digest = Sha256::digest(format!("{job_id}\n{stage}").as_bytes());
    let mut point = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % total;
    for group in groups {
        let weight = u64::from(group.weight);
        if point < weight {
            return group.group.clone();
        }
        point -= weight;
    }
    groups.last().map(|g| g.group.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway_config::default_endpoints;
    use storyreel_proto::common::{ModelPin, Stage};

    fn canary(weight: u32) -> Router {
        let mut stages = default_endpoints();
        let keyframe = stages.get_mut("keyframe").unwrap();
        keyframe[0].weight = 100 - weight;
        keyframe.push(EndpointGroup {
            group: "canary".into(),
            endpoint: "http://127.0.0.1:1".into(),
            weight,
            version: "v2".into(),
        });
        Router::new(&stages)
    }

    #[test]
    fn jobs_spread_by_weight_and_stick_to_their_draw() {
        let router = canary(50);
        let draws: Vec<String> = (0..400)
            .map(|i| router.draw(&format!("job-{i}"), &[]).unwrap()["keyframe"].clone())
            .collect();
        let on_canary = draws.iter().filter(|g| *g == "canary").count();
        assert!(
            (150..=250).contains(&on_canary),
            "{on_canary} of 400 on the canary"
        );
        for i in 0..20 {
            let id = format!("job-{i}");
            assert_eq!(router.draw(&id, &[]).unwrap(), router.draw(&id, &[]).unwrap());
        }
        assert!(canary(0).draw("job-1", &[]).unwrap()["keyframe"] == "stable");
    }

    #[test]
    fn a_pin_routes_to_the_group_of_its_version() {
        let router = canary(0);
        let pin = StageModelPin {
            stage: Stage::Keyframe as i32,
            pin: Some(ModelPin {
                version: "v2".into(),
                endpoint_group: String::new(),
            }),
        };
        assert_eq!(
            router.draw("job-1", std::slice::from_ref(&pin)).unwrap()["keyframe"],
            "canary"
        );
        let unknown = StageModelPin {
            pin: Some(ModelPin {
                version: "v9".into(),
                endpoint_group: String::new(),
            }),
            ..pin
        };
        assert!(
            router
                .draw("job-1", &[unknown])
                .unwrap_err()
                .field
                .starts_with("spec.model_pins")
        );
    }
}
