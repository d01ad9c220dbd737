//! FindReferences: the clips retrieval finds for each scene's prompt, as the DAG finds
//! them (keywords S^K from the prompt, then a BM25 + embedding ranking), each with a
//! thumbnail of its first frame, so a person sees what will guide the video.

use super::{
    auth::Caller,
    service::{ApiError, GatewayService},
};
use crate::images::first_frame_png;
use storyreel_pipeline::seeds;
use storyreel_proto::{
    common::{self, Stage},
    gateway::{FindReferencesRequest, FindReferencesResponse, ReferenceClip, SceneReferences},
    prompt_rewriter::{self, prompt_rewriter_service_client::PromptRewriterServiceClient},
    retrieval::{self, retrieval_service_client::RetrievalServiceClient},
};
use storyreel_runtime::ValidationError;

/// Thumbnail size: 16:9, multiples of 8 as retrieval's frame spec asks.
const THUMB_W: u32 = 128;
const THUMB_H: u32 = 72;

fn check(request: &FindReferencesRequest) -> Result<u32, ValidationError> {
    let n = request.prompts.len();
    if !(1..=8).contains(&n) {
        return Err(ValidationError::new(
            "prompts",
            format!("must have 1-8 entries, got {n}"),
        ));
    }
    for (i, prompt) in request.prompts.iter().enumerate() {
        let chars = prompt.trim().chars().count();
        if !(1..=2000).contains(&chars) {
            return Err(ValidationError::new(
                format!("prompts[{i}]"),
                format!("must be 1-2000 characters, got {chars}"),
            ));
        }
    }
    match request.k {
        None => Ok(4),
        Some(k) if (1..=8).contains(&k) => Ok(k),
        Some(k) => Err(ValidationError::new("k", format!("must be 1-8, got {k}"))),
    }
}

impl GatewayService {
    pub async fn find_references(
        &self,
        caller: &Caller,
        request: FindReferencesRequest,
    ) -> Result<FindReferencesResponse, ApiError> {
        let k = check(&request)?;
        let id = format!("refs-{:024x}", rand::random::<u128>() >> 32);
        self.admit_direct(caller, &id).await?;
        let found = self.rank_references(&id, k, &request).await;
        self.release_direct(caller, &id).await;
        found
    }

    async fn rank_references(
        &self,
        id: &str,
        k: u32,
        request: &FindReferencesRequest,
    ) -> Result<FindReferencesResponse, ApiError> {
        let routes = self.direct_routes(id, &[])?;
        let seed = request.seed.unwrap_or(0);
        let mut scenes = Vec::with_capacity(request.prompts.len());
        for (i, prompt) in request.prompts.iter().enumerate() {
            let scene = i as u32;
            let context = common::JobContext {
                job_id: id.to_string(),
                scene_index: Some(scene),
                seed: Some(seed),
                ..Default::default()
            };
            let keywords = PromptRewriterServiceClient::new(self.direct_channel(&routes, "prompt_rewriter")?)
                .keywords(self.direct_request(
                    "prompt_rewriter",
                    prompt_rewriter::KeywordsRequest {
                        context: Some(context.clone()),
                        prompts: vec![common::Scene {
                            index: scene,
                            text: prompt.clone(),
                        }],
                        seed: Some(seeds::scene_stage(seed, Stage::Keywords, scene)),
                        ..Default::default()
                    },
                ))
                .await
                .map_err(ApiError::Stage)?
                .into_inner()
                .keywords
                .into_iter()
                .next()
                .map(|k| k.keywords)
                .unwrap_or_default();
            let keywords: Vec<String> = keywords.into_iter().take(32).collect();
            let mut clips = Vec::new();
            if !keywords.is_empty() {
                let search = |frames_of: Option<&str>| retrieval::SearchRequest {
                    context: Some(context.clone()),
                    keywords: keywords.clone(),
                    prompt: prompt.clone(),
                    k: Some(k),
                    frames: Some(retrieval::FrameSpec {
                        width: Some(THUMB_W),
                        height: Some(THUMB_H),
                        count: Some(1),
                    }),
                    skip_frames: frames_of.is_none(),
                    frames_clip_id: frames_of.unwrap_or_default().to_string(),
                    ..Default::default()
                };
                let mut client = RetrievalServiceClient::new(self.direct_channel(&routes, "retrieval")?);
                let hits = client
                    .search(self.direct_request("retrieval", search(None)))
                    .await
                    .map_err(ApiError::Stage)?
                    .into_inner()
                    .hits;
                for hit in hits {
                    let thumbnail_png = self.thumbnail(&mut client, search(Some(&hit.clip_id))).await;
                    clips.push(ReferenceClip {
                        rank: hit.rank,
                        clip_id: hit.clip_id,
                        caption: hit.caption,
                        bm25_score: hit.bm25_score,
                        embedding_score: hit.embedding_score,
                        fused_score: hit.fused_score,
                        thumbnail_png,
                    });
                }
            }
            scenes.push(SceneReferences {
                scene_index: scene,
                keywords,
                clips,
            });
        }
        Ok(FindReferencesResponse { scenes })
    }

    /// A clip's first frame as a PNG; empty when it cannot be had (a thumbnail is a
    /// courtesy: the ranking stands without it).
    async fn thumbnail(
        &self,
        client: &mut RetrievalServiceClient<crate::jobs::clients::Intercepted>,
        request: retrieval::SearchRequest,
    ) -> Vec<u8> {
        let frames = match client.search(self.direct_request("retrieval", request)).await {
            Ok(response) => response.into_inner().frames,
            Err(e) => {
                tracing::warn!(error = %e, "a clip thumbnail");
                return Vec::new();
            }
        };
        let Some(reference) = frames
            .as_ref()
            .and_then(|w| storyreel_runtime::tensor_ref::from_wire("frames", w).ok())
        else {
            return Vec::new();
        };
        match self.store.get(&reference).await {
            Ok(tensor) => first_frame_png(&tensor).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "a clip thumbnail");
                Vec::new()
            }),
            Err(e) => {
                tracing::warn!(error = %e, "a clip thumbnail");
                Vec::new()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_and_k_are_checked() {
        let ok = FindReferencesRequest {
            prompts: vec!["a red bridge at dusk".into()],
            ..Default::default()
        };
        assert_eq!(check(&ok).unwrap(), 4);
        let none = FindReferencesRequest::default();
        assert_eq!(check(&none).unwrap_err().field, "prompts");
        let blank = FindReferencesRequest {
            prompts: vec!["ok".into(), "  ".into()],
            ..Default::default()
        };
        assert_eq!(check(&blank).unwrap_err().field, "prompts[1]");
        let big_k = FindReferencesRequest { k: Some(9), ..ok };
        assert_eq!(check(&big_k).unwrap_err().field, "k");
    }
}
