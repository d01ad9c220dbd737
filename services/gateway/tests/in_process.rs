//! The pipeline on the embedded executor, in this process, with the default models:
//! the same seed gives the same frames and narration; a re-run with one scene edited
//! recomputes that scene only (the stage caches), and the report counts the hits.

mod common;

use storyreel_gateway::{Embedded, PipelineConfig, job::run_job};
use storyreel_pipeline::{
    BackendChoice, JobSpec,
    progress::{Silent, Step},
    spec::{Aspect, FrameSize, Resolution},
};
use storyreel_runtime::config::Sources;

fn sources() -> Sources {
    Sources {
        dir: common::config_dir().into(),
        profile: None,
        env: Some(Vec::new()),
    }
}

fn spec(job_id: &str, backend: BackendChoice, story: &[&str]) -> JobSpec {
    let aspect = match backend {
        BackendChoice::Reference => Aspect::Portrait,
        _ => Aspect::Square,
    };
    JobSpec {
        job_id: job_id.into(),
        title: "A harbour town".into(),
        n_scenes: story.len() as u32,
        style: String::new(),
        output: FrameSize::output(Resolution::Side(128), aspect),
        upscale: 2,
        backend,
        voice: String::new(),
        seed: 21,
        fps: 12,
        crossfade_s: 0.3,
        key_frames: 4,
        interpolation_factor: 4,
        steps: 2,
        guidance_scale: 7.5,
        reference_strength: 0.6,
        story: Some(story.iter().map(|s| s.to_string()).collect()),
        prompts: None,
        negative_prompt: String::new(),
        bypass_cache: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_video_and_an_edited_scene_recomputes_only_itself() {
    let config = PipelineConfig::default();
    let embedded = Embedded::start(&sources(), &config)
        .await
        .expect("the stages start (make models)");
    embedded.wait_ready().await.expect("the models load");
    let out = tempfile::tempdir().unwrap();
    let assembly = config.assembly(Some(out.path().to_path_buf()));
    let settings = config.settings();

    // the same seed, recomputed (bypass_cache): byte-identical frames and narration (the
    // Piper voice: libespeak-ng carries wave state from one utterance to the next)
    let story = ["The boats come home at dusk.", "Lanterns glow along the quay."];
    let mut once = spec("first", BackendChoice::Diffusion, &story[..1]);
    once.voice = "piper:en_US-joe-medium".into();
    let first = run_job(&once, &settings, &assembly, &embedded, embedded.store(), &Silent)
        .await
        .unwrap();
    let mut again = once.clone();
    again.job_id = "again".into();
    again.bypass_cache = true;
    let second = run_job(&again, &settings, &assembly, &embedded, embedded.store(), &Silent)
        .await
        .unwrap();
    assert!(
        second.output.calls.iter().all(|c| !c.cache_hit),
        "bypass_cache recomputes every stage"
    );
    let (a, b) = (&first.output.scenes[0], &second.output.scenes[0]);
    assert_ne!(a.frames.key, b.frames.key, "each job has its own tensors");
    assert_eq!(
        a.frames.checksum, b.frames.checksum,
        "the same seed gives the same frames"
    );
    assert_eq!(a.narration.audio.checksum, b.narration.audio.checksum);

    // two scenes, then scene 2 edited: scene 1 is answered from the caches
    let base = run_job(
        &spec("base", BackendChoice::Reference, &story),
        &settings,
        &assembly,
        &embedded,
        embedded.store(),
        &Silent,
    )
    .await
    .unwrap();
    let edited_story = [story[0], "A storm rolls in over the lighthouse."];
    let edited = run_job(
        &spec("edited", BackendChoice::Reference, &edited_story),
        &settings,
        &assembly,
        &embedded,
        embedded.store(),
        &Silent,
    )
    .await
    .unwrap();
    let cached = |scene: u32| -> Vec<(Step, bool)> {
        edited
            .output
            .calls
            .iter()
            .filter(|c| c.scene == Some(scene) && c.step != Step::Retrieval)
            .map(|c| (c.step, c.cache_hit))
            .collect()
    };
    let unchanged = cached(0);
    assert!(unchanged.len() >= 6, "{unchanged:?}");
    assert!(
        unchanged.iter().all(|(_, hit)| *hit),
        "scene 1 is unchanged: {unchanged:?}"
    );
    let changed = cached(1);
    for step in [Step::Prompt, Step::Keywords, Step::Narration] {
        assert!(
            changed.contains(&(step, false)),
            "{step:?} of the edited scene is recomputed: {changed:?}"
        );
    }
    assert_eq!(
        edited.output.scenes[0].frames.checksum,
        base.output.scenes[0].frames.checksum
    );
    // the report counts the hits
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&edited.artifacts.report).unwrap()).unwrap();
    let hits = edited.output.calls.iter().filter(|c| c.cache_hit).count();
    assert_eq!(report["cache"]["hits"], hits);
    assert!(hits >= unchanged.len());
    common::assert_complete_video(
        &edited.artifacts.video,
        72,
        128,
        &edited_story.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
}
