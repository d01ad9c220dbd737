//! The gateway API in mesh mode: a real redis-server (its own, on a free port), the
//! Temporal dev server, every stage service as its own process on the default models,
//! and a gateway replica reaching them over gRPC. One mesh serves every check here:
//!
//! - CreateVideo to an MP4 that ffprobe accepts (1 scene, 256 px), fetched with
//!   GetArtifact, also from an offset;
//! - WatchJob to the end, and resumed from an old event id: every later event again;
//! - the same idempotency key twice gives one job; with another spec, ALREADY_EXISTS;
//! - CancelJob stops the job's stages and the job ends CANCELLED;
//! - no key: UNAUTHENTICATED; another key's job: NOT_FOUND; past the quota:
//!   RESOURCE_EXHAUSTED; bad requests: INVALID_ARGUMENT naming the field;
//! - ListJobs: the caller's jobs only, filtered by state and labels;
//! - GetOptions and FindReferences over gRPC;
//! - a canary at 50% (a second interpolation service, another model version): jobs are
//!   served by both, each job by one, and the job and its report say which;
//! - one OpenTelemetry trace per job: the caller's trace id on the spans of the gateway
//!   and of all seven stage services (a diffusion job touches every one), exported over
//!   OTLP to a fake collector.

mod common;

use futures::StreamExt;
use std::time::{Duration, Instant};
use storyreel_gateway::{
    api::auth::key_digest,
    mesh::{Mesh, MeshOptions},
};
use storyreel_proto::{
    common::Resolution,
    gateway::{
        CancelJobRequest, CreateVideoRequest, FindReferencesRequest, GetArtifactRequest, GetJobRequest,
        GetOptionsRequest, Job, JobEvent, JobState, ListJobsRequest, StageState, VideoSpec, WatchJobRequest,
        gateway_service_client::GatewayServiceClient, job_event::Payload,
    },
};
use tonic::{Code, Request, transport::Channel};

const OTHER_KEY: &str = "other-key-of-the-test";
const CANARY_VERSION: &str = "interpolation-canary-v2";

fn authorized<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

fn small(title: &str, seed: u64) -> VideoSpec {
    VideoSpec {
        title: title.into(),
        n_scenes: Some(1),
        resolution: Resolution::Resolution256 as i32,
        upscale: Some(1),
        key_frames: Some(2),
        seed: Some(seed),
        crossfade_s: Some(0.0),
        ..Default::default()
    }
}

async fn events_until_end(
    client: &mut GatewayServiceClient<Channel>,
    key: &str,
    job_id: &str,
    after: &str,
) -> Vec<JobEvent> {
    let mut stream = client
        .watch_job(authorized(
            key,
            WatchJobRequest {
                job_id: job_id.into(),
                resume_after: after.into(),
                include_story_text: false,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(900);
    while let Some(event) = tokio::time::timeout_at(deadline.into(), stream.next())
        .await
        .expect("the job ends within 15 minutes")
    {
        events.push(event.unwrap().event.unwrap());
    }
    events
}

fn final_state(events: &[JobEvent]) -> Option<JobState> {
    events.iter().rev().find_map(|e| match &e.payload {
        Some(Payload::StateChange(c)) => JobState::try_from(c.state).ok(),
        Some(Payload::Snapshot(job)) => JobState::try_from(job.state).ok(),
        _ => None,
    })
}

async fn fetch_artifact(
    client: &GatewayServiceClient<Channel>,
    key: &str,
    job_id: &str,
    name: &str,
) -> Vec<u8> {
    let mut chunks = client
        .clone()
        .get_artifact(authorized(
            key,
            GetArtifactRequest {
                job_id: job_id.into(),
                name: name.into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        bytes.extend_from_slice(&chunk.unwrap().data);
    }
    bytes
}

async fn get(client: &mut GatewayServiceClient<Channel>, key: &str, job_id: &str) -> Job {
    client
        .get_job(authorized(
            key,
            GetJobRequest {
                job_id: job_id.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_api_over_a_mesh() {
    let run = tempfile::tempdir().unwrap();
    let mut options = MeshOptions::near_current_exe(run.path().join("mesh")).unwrap();
    options.config_dir = common::config_dir().into();
    options.max_concurrent_jobs = 4;
    let mut collector = fake_opentelemetry_collector::FakeCollectorServer::start()
        .await
        .unwrap();
    options.otlp_endpoint = Some(collector.endpoint());
    // The collector holds 64 spans and an export waits while it is full: drain it all
    // along, or the services' exports time out (and drop their spans) during the jobs.
    let spans: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>> = Default::default();
    let drained = spans.clone();
    let draining = tokio::spawn(async move {
        loop {
            let batch = collector.exported_spans(1, Duration::from_millis(500)).await;
            drained
                .lock()
                .unwrap()
                .extend(batch.into_iter().map(|s| (s.trace_id, s.name)));
        }
    });
    options.extra_groups = vec![("interpolation".into(), "canary".into(), 50, CANARY_VERSION.into())];
    options.extra_config = format!(
        "[[gateway.api_keys]]\nname = \"other\"\nsha256 = \"{}\"\nmax_concurrent_jobs = 1\n",
        key_digest(OTHER_KEY)
    );
    let mesh = Mesh::start(options)
        .await
        .unwrap_or_else(|e| panic!("the mesh starts: {e:#}"));
    let key = mesh.api_key.clone();
    let channel = tonic::transport::Endpoint::from_shared(mesh.gateways[0].clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = GatewayServiceClient::new(channel).max_decoding_message_size(8 << 20);

    // no key, a wrong key
    let refused = client
        .get_job(Request::new(GetJobRequest {
            job_id: "job-x".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let refused = client
        .get_job(authorized(
            "not-a-key",
            GetJobRequest {
                job_id: "job-x".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);

    // GetOptions and FindReferences answer over gRPC as over REST
    let options = client
        .get_options(authorized(&key, GetOptionsRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(options.backends, ["auto", "diffusion", "reference"]);
    assert!(!options.voices.is_empty());
    let refused = client
        .find_references(authorized(&key, FindReferencesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("`prompts`"), "{}", refused.message());

    // bad requests name the field
    for (spec, field) in [
        (small(&"x".repeat(501), 1), "spec.title"),
        (
            VideoSpec {
                n_scenes: Some(9),
                ..small("t", 1)
            },
            "spec.n_scenes",
        ),
        (
            VideoSpec {
                aspect: "4:3".into(),
                ..small("t", 1)
            },
            "spec.aspect",
        ),
    ] {
        let status = client
            .create_video(authorized(
                &key,
                CreateVideoRequest {
                    spec: Some(spec),
                    ..Default::default()
                },
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }

    // a job to the end, with an idempotency key and labels
    let request = CreateVideoRequest {
        spec: Some(small("A lighthouse keeper's last night", 11)),
        idempotency_key: "lighthouse-1".into(),
        labels: [("team".to_string(), "platform".to_string())].into(),
        ..Default::default()
    };
    let created = client
        .create_video(authorized(&key, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(!created.existing);
    let job_id = created.job.unwrap().id;
    let again = client
        .create_video(authorized(&key, request.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(again.existing, "the same idempotency key gives the same job");
    assert_eq!(again.job.unwrap().id, job_id);
    let mut changed = request.clone();
    changed.spec = Some(small("Another title", 11));
    let conflict = client.create_video(authorized(&key, changed)).await.unwrap_err();
    assert_eq!(conflict.code(), Code::AlreadyExists);

    // another key does not see it
    let hidden = client
        .get_job(authorized(
            OTHER_KEY,
            GetJobRequest {
                job_id: job_id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);

    let events = events_until_end(&mut client, &key, &job_id, "").await;
    assert!(matches!(events[0].payload, Some(Payload::Snapshot(_))));
    assert_eq!(final_state(&events), Some(JobState::Succeeded), "{events:#?}");
    let job = get(&mut client, &key, &job_id).await;
    assert_eq!(job.state, JobState::Succeeded as i32);
    assert_eq!(job.story.len(), 1);
    let names: Vec<&str> = job.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["video.mp4", "subtitles.srt", "job.json"]);

    // resumed from an old event: every later event, in order
    let ids: Vec<&str> = events.iter().skip(1).map(|e| e.event_id.as_str()).collect();
    assert!(ids.len() >= 4, "{ids:?}");
    let resumed = events_until_end(&mut client, &key, &job_id, ids[1]).await;
    let resumed_ids: Vec<&str> = resumed.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(resumed_ids, ids[2..], "a resumed watch sees every later event");

    // the MP4, whole and from an offset
    let video = &job.artifacts[0];
    let fetch = |offset: u64| {
        let mut client = client.clone();
        let key = key.clone();
        let job_id = job_id.clone();
        async move {
            let mut chunks = client
                .get_artifact(authorized(
                    &key,
                    GetArtifactRequest {
                        job_id,
                        name: "video.mp4".into(),
                        offset,
                        chunk_size: Some(64 * 1024),
                    },
                ))
                .await
                .unwrap()
                .into_inner();
            let mut bytes = Vec::new();
            while let Some(chunk) = chunks.next().await {
                bytes.extend_from_slice(&chunk.unwrap().data);
            }
            bytes
        }
    };
    let whole = fetch(0).await;
    assert_eq!(whole.len() as u64, video.size_bytes);
    assert_eq!(fetch(1000).await, whole[1000..]);
    let path = run.path().join("video.mp4");
    std::fs::write(&path, &whole).unwrap();
    let story: Vec<String> = job.story.iter().map(|s| s.text.clone()).collect();
    common::assert_complete_video(&path, 256, 144, &story);
    let Err(bad_name) = client
        .get_artifact(authorized(
            &key,
            GetArtifactRequest {
                job_id: job_id.clone(),
                name: "../api-key".into(),
                ..Default::default()
            },
        ))
        .await
    else {
        panic!("a path is refused")
    };
    assert_eq!(bad_name.code(), Code::InvalidArgument);

    // the quota of the other key (1), and cancellation
    let first = client
        .create_video(authorized(
            OTHER_KEY,
            CreateVideoRequest {
                spec: Some(VideoSpec {
                    n_scenes: Some(2),
                    ..small("The long voyage of a paper boat", 5)
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let over = client
        .create_video(authorized(
            OTHER_KEY,
            CreateVideoRequest {
                spec: Some(small("One too many", 6)),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(over.code(), Code::ResourceExhausted, "{over:?}");
    // wait until a stage runs, then cancel
    let until = Instant::now() + Duration::from_secs(120);
    while get(&mut client, OTHER_KEY, &first.id).await.stages.is_empty() {
        assert!(Instant::now() < until, "the job starts");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let cancel_asked_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let cancelled = client
        .cancel_job(authorized(
            OTHER_KEY,
            CancelJobRequest {
                job_id: first.id.clone(),
                reason: "test".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert!(cancelled.cancel_requested);
    let events = events_until_end(&mut client, OTHER_KEY, &first.id, "0").await;
    assert_eq!(final_state(&events), Some(JobState::Cancelled), "{events:#?}");
    // the running stage call stopped within 2 s (its CANCELLED event, by the stream's
    // clock, against the time CancelJob was asked), before the job's end
    let stopped: Vec<u64> = events
        .iter()
        .filter(|e| matches!(&e.payload, Some(Payload::Stage(s)) if s.state == StageState::Cancelled as i32))
        .map(|e| e.event_id.split('-').next().unwrap().parse().unwrap())
        .collect();
    assert!(!stopped.is_empty(), "a running stage was cancelled: {events:#?}");
    for at in stopped {
        assert!(
            at.saturating_sub(cancel_asked_ms) <= 2000,
            "a stage stopped {} ms after CancelJob",
            at - cancel_asked_ms
        );
    }
    // the slot is back
    let next = client
        .create_video(authorized(
            OTHER_KEY,
            CreateVideoRequest {
                spec: Some(small("One too many", 6)),
                ..Default::default()
            },
        ))
        .await;
    let next = next.unwrap().into_inner().job.unwrap();
    client
        .cancel_job(authorized(
            OTHER_KEY,
            CancelJobRequest {
                job_id: next.id.clone(),
                reason: String::new(),
            },
        ))
        .await
        .unwrap();

    // ListJobs: own jobs only, by state and label (visibility is eventually consistent)
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = client
            .list_jobs(authorized(
                &key,
                ListJobsRequest {
                    states: vec![JobState::Succeeded as i32],
                    labels: [("team".to_string(), "platform".to_string())].into(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = listed.jobs.iter().map(|j| j.id.as_str()).collect();
        if ids == [job_id.as_str()] {
            break;
        }
        assert!(Instant::now() < until, "ListJobs shows the job: {ids:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let others = client
        .list_jobs(authorized(OTHER_KEY, ListJobsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert!(others.jobs.iter().all(|j| j.id != job_id));

    // canary at 50%: one job drawn to each group (the draw is a hash of the job id, and
    // an idempotency key fixes the id), each served by its group's version throughout
    let router = {
        let mut stages = storyreel_gateway::gateway_config::default_endpoints();
        let groups = stages.get_mut("interpolation").unwrap();
        groups[0].weight = 50;
        groups.push(storyreel_gateway::gateway_config::EndpointGroup {
            group: "canary".into(),
            endpoint: "http://127.0.0.1:1".into(),
            weight: 50,
            version: CANARY_VERSION.into(),
        });
        storyreel_gateway::routing::Router::new(&stages)
    };
    let owner = key_digest(&key);
    let draw = |k: &str| {
        let id = storyreel_gateway::api::service::idempotent_job_id(&owner, k);
        router.draw(&id, &[]).unwrap()["interpolation"].clone()
    };
    let keys: Vec<String> = ["stable", "canary"]
        .iter()
        .map(|group| {
            (0..100)
                .map(|i| format!("canary-{i}"))
                .find(|k| draw(k) == *group)
                .unwrap()
        })
        .collect();
    for (idempotency_key, group) in keys.iter().zip(["stable", "canary"]) {
        let job = client
            .create_video(authorized(
                &key,
                CreateVideoRequest {
                    spec: Some(small("A lighthouse keeper's last night", 11)),
                    idempotency_key: idempotency_key.clone(),
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let events = events_until_end(&mut client, &key, &job.id, "").await;
        assert_eq!(final_state(&events), Some(JobState::Succeeded), "{events:#?}");
        let job = get(&mut client, &key, &job.id).await;
        let interpolation: Vec<&str> = job
            .stages
            .iter()
            .filter(|s| s.stage == storyreel_proto::common::Stage::Interpolation as i32)
            .map(|s| s.endpoint_group.as_str())
            .collect();
        assert_eq!(interpolation, [group], "the job stays on the group it drew");
        let report = fetch_artifact(&client, &key, &job.id, "job.json").await;
        let report: serde_json::Value = serde_json::from_slice(&report).unwrap();
        assert_eq!(report["endpoint_groups"]["interpolation"]["group"], group);
        let versions: Vec<&str> = report["calls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["step"] == "interpolation")
            .map(|c| c["model"]["version"].as_str().unwrap())
            .collect();
        assert!(!versions.is_empty());
        for version in versions {
            assert_eq!(
                version == CANARY_VERSION,
                group == "canary",
                "{group} served {version}"
            );
        }
    }

    // one trace: a diffusion job (every stage service) under the caller's trace id
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let mut traced = authorized(
        &key,
        CreateVideoRequest {
            spec: Some(VideoSpec {
                backend: "diffusion".into(),
                upscale: Some(2),
                steps: Some(2),
                // A person's prompt: the story, keywords and every visual stage still run.
                prompts: vec!["a small paper boat drifting on a calm river at dawn".into()],
                ..small("A paper boat", 21)
            }),
            ..Default::default()
        },
    );
    traced.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-{:016x}-01", rand::random::<u64>() | 1)
            .parse()
            .unwrap(),
    );
    let traced_job = client
        .create_video(traced)
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let events = events_until_end(&mut client, &key, &traced_job.id, "").await;
    assert_eq!(final_state(&events), Some(JobState::Succeeded), "{events:#?}");
    let services = [
        "storyreel.gateway.v1.GatewayService/CreateVideo",
        "storyreel.story_llm.v1.StoryLlmService/",
        "storyreel.prompt_rewriter.v1.PromptRewriterService/",
        "storyreel.retrieval.v1.RetrievalService/",
        "storyreel.keyframe.v1.KeyframeService/",
        "storyreel.interpolation.v1.InterpolationService/",
        "storyreel.decoder.v1.DecoderService/",
        "storyreel.tts.v1.TtsService/",
    ];
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: Vec<String> = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(trace, _)| *trace == trace_id)
            .map(|(_, name)| name.clone())
            .collect();
        let missing: Vec<&&str> = services
            .iter()
            .filter(|s| !seen.iter().any(|n| n.contains(**s)))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < until,
            "no span of {missing:?} in the job's trace; seen {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    mesh.stop();
    draining.abort();
}
