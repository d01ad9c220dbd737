//! Durable jobs in mesh mode (real redis-server, Temporal dev server, every service its
//! own process, default models): what dies mid-job does not lose the job, and what
//! finished is not done again.
//!
//! - kill -9 of the keyframe service mid-stage, then a restart: the job completes and no
//!   finished stage ran twice;
//! - the Temporal server and Redis killed and restarted mid-job: the job completes;
//! - two gateway replicas, kill -9 of the one running the job mid-stage: the other
//!   finishes it, and every finished stage ran once;
//! - a stage call running far longer than its heartbeat timeout on a live replica is not
//!   restarted (one attempt).

mod common;

use futures::StreamExt;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use storyreel_gateway::mesh::{Mesh, MeshOptions};
use storyreel_proto::{
    common::{Resolution, Stage},
    gateway::{
        CreateVideoRequest, JobEvent, JobState, StageState, VideoSpec, WatchJobRequest,
        gateway_service_client::GatewayServiceClient, job_event::Payload,
    },
};
use tonic::Request;

const HEARTBEAT_MS: u64 = 4000;

async fn mesh(replicas: usize) -> (tempfile::TempDir, Mesh) {
    let run = tempfile::tempdir().unwrap();
    let mut options = MeshOptions::near_current_exe(run.path().join("mesh")).unwrap();
    options.config_dir = common::config_dir().into();
    options.gateway_replicas = replicas;
    options.env.push((
        "STORYREEL_GATEWAY__HEARTBEAT_TIMEOUT_MS".into(),
        HEARTBEAT_MS.to_string(),
    ));
    let mesh = Mesh::start(options)
        .await
        .unwrap_or_else(|e| panic!("the mesh starts: {e:#}"));
    (run, mesh)
}

/// A diffusion job whose keyframe stage runs for a few seconds per 10 steps.
fn long_job(title: &str, seed: u64, steps: u32) -> CreateVideoRequest {
    CreateVideoRequest {
        spec: Some(VideoSpec {
            title: title.into(),
            n_scenes: Some(1),
            resolution: Resolution::Resolution256 as i32,
            upscale: Some(1),
            key_frames: Some(4),
            steps: Some(steps),
            seed: Some(seed),
            backend: "diffusion".into(),
            crossfade_s: Some(0.0),
            // People's prompts: the test is about durability, not the rewriter's words.
            prompts: vec!["a lighthouse on a cliff at night, waves, stars".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn authorized<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

async fn client(endpoint: &str) -> Option<GatewayServiceClient<tonic::transport::Channel>> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .ok()?
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .ok()?;
    Some(GatewayServiceClient::new(channel))
}

/// Watches `job_id` on any of `gateways`, resuming after the last event whenever a
/// gateway or Redis goes away, until the job ends or `stop_when` says so.
struct Watcher {
    key: String,
    job_id: String,
    events: Vec<JobEvent>,
}

impl Watcher {
    /// Where to resume: after the last event seen, or the stream's beginning (every
    /// event of the job, including those before the first watch).
    fn last_id(&self) -> String {
        self.events
            .iter()
            .rev()
            .map(|e| e.event_id.clone())
            .find(|id| !id.is_empty())
            .unwrap_or_else(|| "0".into())
    }

    fn ended(&self) -> Option<JobState> {
        self.events.iter().rev().find_map(|e| match &e.payload {
            Some(Payload::StateChange(c)) => JobState::try_from(c.state)
                .ok()
                .filter(|s| matches!(s, JobState::Succeeded | JobState::Failed | JobState::Cancelled)),
            Some(Payload::Snapshot(j)) => JobState::try_from(j.state)
                .ok()
                .filter(|s| matches!(s, JobState::Succeeded | JobState::Failed | JobState::Cancelled)),
            _ => None,
        })
    }

    /// Reads events until `until(events)` holds (or the job ends); false on timeout.
    async fn until(
        &mut self,
        gateways: &[String],
        timeout: Duration,
        until: impl Fn(&[JobEvent]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if until(&self.events) || self.ended().is_some() {
                return true;
            }
            for gateway in gateways {
                let Some(mut client) = client(gateway).await else {
                    continue;
                };
                let request = WatchJobRequest {
                    job_id: self.job_id.clone(),
                    resume_after: self.last_id(),
                    include_story_text: false,
                };
                let Ok(response) = client.watch_job(authorized(&self.key, request)).await else {
                    continue;
                };
                let mut stream = response.into_inner();
                loop {
                    let next = tokio::time::timeout_at(deadline.into(), stream.next()).await;
                    match next {
                        Ok(Some(Ok(message))) => {
                            self.events.extend(message.event);
                            if until(&self.events) || self.ended().is_some() {
                                return true;
                            }
                        }
                        Ok(Some(Err(_))) | Ok(None) => break,
                        Err(_) => return false,
                    }
                }
                if self.ended().is_some() {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        false
    }
}

fn stage_is(events: &[JobEvent], stage: Stage, state: StageState) -> bool {
    events.iter().any(|e| {
        matches!(&e.payload, Some(Payload::Stage(s)) if s.stage == stage as i32 && s.state == state as i32)
    })
}

/// (stage, scene) -> (running events, succeeded events).
fn stage_counts(events: &[JobEvent]) -> BTreeMap<(i32, Option<u32>), (u32, u32)> {
    let mut counts = BTreeMap::new();
    for event in events {
        if let Some(Payload::Stage(s)) = &event.payload {
            let entry = counts.entry((s.stage, s.scene_index)).or_insert((0, 0));
            if s.state == StageState::Running as i32 {
                entry.0 += 1;
            } else if s.state == StageState::Succeeded as i32 {
                entry.1 += 1;
            }
        }
    }
    counts
}

/// Every stage call of the job succeeded once; only `retried` started more than once.
/// Retrieval is called twice per scene (ranking the clips, then the chosen clip's
/// frames), every other stage once.
fn assert_ran_once(events: &[JobEvent], retried: Stage) {
    for ((stage, scene), (running, succeeded)) in stage_counts(events) {
        let calls = if stage == Stage::Retrieval as i32 { 2 } else { 1 };
        assert_eq!(
            succeeded, calls,
            "stage {stage} scene {scene:?} finished {succeeded} times"
        );
        if stage != retried as i32 {
            assert_eq!(
                running, calls,
                "stage {stage} scene {scene:?} started {running} times"
            );
        }
    }
}

async fn create(mesh: &Mesh, gateway: usize, request: CreateVideoRequest) -> Watcher {
    let mut client = client(&mesh.gateways[gateway])
        .await
        .expect("the gateway answers");
    let job = client
        .create_video(authorized(&mesh.api_key, request))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    Watcher {
        key: mesh.api_key.clone(),
        job_id: job.id,
        events: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_stage_and_restarted_stores_lose_no_job() {
    let (_run, mut mesh) = mesh(1).await;
    let gateways = mesh.gateways.clone();

    // kill -9 the keyframe service while it generates, then bring it back
    let mut watcher = create(&mesh, 0, long_job("The last lighthouse keeper", 31, 30)).await;
    assert!(
        watcher
            .until(&gateways, Duration::from_secs(300), |e| stage_is(
                e,
                Stage::Keyframe,
                StageState::Running
            ))
            .await,
        "the keyframe stage starts"
    );
    mesh.process("keyframe").unwrap().kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    mesh.restart("keyframe").await.unwrap();
    assert!(
        watcher
            .until(&gateways, Duration::from_secs(600), |_| false)
            .await
    );
    assert_eq!(
        watcher.ended(),
        Some(JobState::Succeeded),
        "{:#?}",
        watcher.events
    );
    assert_ran_once(&watcher.events, Stage::Keyframe);

    // the Temporal server and Redis killed and restarted mid-job
    let mut watcher = create(&mesh, 0, long_job("A boat at night", 32, 30)).await;
    assert!(
        watcher
            .until(&gateways, Duration::from_secs(300), |e| stage_is(
                e,
                Stage::Keyframe,
                StageState::Running
            ))
            .await
    );
    mesh.restart("temporal").await.unwrap();
    mesh.restart("redis").await.unwrap();
    assert!(
        watcher
            .until(&gateways, Duration::from_secs(600), |_| false)
            .await
    );
    assert_eq!(
        watcher.ended(),
        Some(JobState::Succeeded),
        "{:#?}",
        watcher.events
    );

    mesh.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_finishes_the_job_of_a_killed_one() {
    let (_run, mut mesh) = mesh(2).await;
    let gateways = mesh.gateways.clone();
    // Only replica 0 is up when the job starts, so it is the one running it.
    mesh.process("gateway-1").unwrap().kill();
    let mut watcher = create(&mesh, 0, long_job("The lighthouse and the storm", 41, 30)).await;
    assert!(
        watcher
            .until(&gateways, Duration::from_secs(300), |e| stage_is(
                e,
                Stage::Keyframe,
                StageState::Running
            ))
            .await
    );
    mesh.restart("gateway-1").await.unwrap();
    mesh.process("gateway-0").unwrap().kill();
    let survivor = [gateways[1].clone()];
    assert!(
        watcher
            .until(&survivor, Duration::from_secs(600), |_| false)
            .await
    );
    assert_eq!(
        watcher.ended(),
        Some(JobState::Succeeded),
        "{:#?}",
        watcher.events
    );
    assert_ran_once(&watcher.events, Stage::Keyframe);

    // a long stage on a live replica is not restarted: one attempt, though it ran for
    // several heartbeat timeouts
    let mut watcher = create(&mesh, 1, long_job("A quiet harbour", 42, 100)).await;
    assert!(
        watcher
            .until(&survivor, Duration::from_secs(600), |_| false)
            .await
    );
    assert_eq!(
        watcher.ended(),
        Some(JobState::Succeeded),
        "{:#?}",
        watcher.events
    );
    assert_ran_once(&watcher.events, Stage::Unspecified);
    let times: Vec<(i32, u64)> = watcher
        .events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::Stage(s)) if s.stage == Stage::Keyframe as i32 && s.scene_index == Some(0) => {
                let ms: u64 = e.event_id.split('-').next()?.parse().ok()?;
                Some((s.state, ms))
            }
            _ => None,
        })
        .collect();
    let started = times
        .iter()
        .find(|(s, _)| *s == StageState::Running as i32)
        .unwrap()
        .1;
    let finished = times
        .iter()
        .find(|(s, _)| *s == StageState::Succeeded as i32)
        .unwrap()
        .1;
    assert!(
        finished - started > 2 * HEARTBEAT_MS,
        "the keyframe stage ran {} ms, not far over the {HEARTBEAT_MS} ms heartbeat timeout",
        finished - started
    );

    mesh.stop();
}
