//! `auto`: which backend makes a job's frames. The diffusion path is the paper's, but
//! with the random-initialised keyframe model `make models` installs (no trained video
//! diffusion weights exist in the package registries) its frames are noise; then the
//! reference backend (the retrieved clips' frames, RIFE, Real-ESRGAN) makes a watchable
//! video instead. The keyframe stage's ModelInfo says which it is (`random_init`).

use crate::{Backend, error::PipelineError, executor::StageExecutor, progress::Step, spec::BackendChoice};

/// The backend of `choice` and why, in words for the person who asked.
pub async fn resolve(
    choice: BackendChoice,
    executor: &dyn StageExecutor,
) -> Result<(Backend, String), PipelineError> {
    match choice {
        BackendChoice::Diffusion => Ok((Backend::Diffusion, "asked for (--backend diffusion)".into())),
        BackendChoice::Reference => Ok((Backend::Reference, "asked for (--backend reference)".into())),
        BackendChoice::Auto => {
            let model = executor
                .keyframe_model()
                .await
                .map_err(PipelineError::stage(Step::Keyframe, None))?;
            Ok(choose_auto(&model))
        }
    }
}

/// `auto` for a keyframe model.
pub fn choose_auto(model: &storyreel_runtime::ModelInfo) -> (Backend, String) {
    if model.random_init {
        (
            Backend::Reference,
            format!(
                "auto: the keyframe model `{}` ({}) is random-initialised, so its frames would be \
                 noise; the retrieved clips make the frames (configure trained weights in \
                 [keyframe] model_dir for the diffusion backend)",
                model.name, model.version
            ),
        )
    } else {
        (
            Backend::Diffusion,
            format!(
                "auto: the keyframe model `{}` ({}) is trained",
                model.name, model.version
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyreel_runtime::ModelInfo;

    #[test]
    fn auto_follows_the_keyframe_models_random_init_flag() {
        let mut model = ModelInfo {
            name: "keyframe-tiny".into(),
            version: "v1".into(),
            ..Default::default()
        };
        model.random_init = true;
        let (backend, reason) = choose_auto(&model);
        assert_eq!(backend, Backend::Reference);
        assert!(reason.contains("random-initialised"), "{reason}");
        model.random_init = false;
        assert_eq!(choose_auto(&model).0, Backend::Diffusion);
    }
}
