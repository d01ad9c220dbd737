//! GetOptions: what a client may choose (a form's choices and limits), from this
//! gateway's `[pipeline]` defaults and the tts stage's voices.

use super::{
    auth::Caller,
    service::{ApiError, GatewayService},
    video_spec,
};
use storyreel_proto::{
    gateway::{GetOptionsRequest, GetOptionsResponse, VideoSpec, VoiceOption},
    tts::{ListVoicesRequest, tts_service_client::TtsServiceClient},
};

/// Longest title, as `VideoSpec.title` documents it.
pub const MAX_TITLE_CHARS: u32 = 500;
/// Most scenes (the paper's sub-videos).
pub const MAX_SCENES: u32 = 8;

impl GatewayService {
    pub async fn get_options(
        &self,
        _caller: &Caller,
        _request: GetOptionsRequest,
    ) -> Result<GetOptionsResponse, ApiError> {
        let probe = VideoSpec {
            title: "options".into(),
            ..Default::default()
        };
        let (_, mut defaults) = video_spec::resolve(&probe, &self.pipeline, "options", 0)?;
        // A default seed is a fresh draw per job, not a value to show.
        defaults.title.clear();
        defaults.seed = None;
        let routes = self.direct_routes("options", &[])?;
        let voices = TtsServiceClient::new(self.direct_channel(&routes, "tts")?)
            .list_voices(self.direct_request("tts", ListVoicesRequest::default()))
            .await
            .map_err(ApiError::Stage)?
            .into_inner()
            .voices
            .into_iter()
            .map(|v| VoiceOption {
                id: v.id,
                display_name: v.display_name,
                languages: v.languages,
            })
            .collect();
        Ok(GetOptionsResponse {
            backends: ["auto", "diffusion", "reference"].map(String::from).to_vec(),
            default_backend: defaults.backend.clone(),
            voices,
            resolutions: vec![256, 512, 768],
            aspects: ["16:9", "1:1", "9:16"].map(String::from).to_vec(),
            max_scenes: MAX_SCENES,
            max_title_chars: MAX_TITLE_CHARS,
            defaults: Some(defaults),
        })
    }
}
