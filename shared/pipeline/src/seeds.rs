//! Every call's seed from the job seed: the stage mixed in, then the scene, with the
//! runtime's seed rules ([`storyreel_runtime::seed`]); so one job seed reproduces a whole
//! video, and an edited scene keeps the other scenes' seeds.

use storyreel_proto::common::Stage;
use storyreel_runtime::seed;

/// The seed of a once-per-job call of `stage`.
pub fn job_stage(job_seed: u64, stage: Stage) -> u64 {
    seed::from_job(job_seed, stage)
}

/// The seed of `stage` for scene `scene`.
pub fn scene_stage(job_seed: u64, stage: Stage, scene: u32) -> u64 {
    seed::for_scene(seed::from_job(job_seed, stage), scene as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_by_stage_and_scene_and_repeat_for_the_same_job() {
        let a = scene_stage(1, Stage::Keyframe, 0);
        assert_eq!(a, scene_stage(1, Stage::Keyframe, 0));
        assert_ne!(a, scene_stage(1, Stage::Keyframe, 1));
        assert_ne!(a, scene_stage(1, Stage::Tts, 0));
        assert_ne!(a, scene_stage(2, Stage::Keyframe, 0));
        assert_ne!(job_stage(1, Stage::Story), job_stage(1, Stage::Prompt));
    }
}
