//! Which retrieved clip each scene uses. A video whose scenes all show the same clip is
//! dull, so the scenes of one job prefer distinct clips: scene by scene in order, the
//! best-scoring clip not yet used is taken when its fused score is within
//! `reuse_margin` (a fraction of the scene's best score) of the best; otherwise the best
//! is reused. Deterministic: the same hits give the same choice.

use std::collections::HashSet;

/// A ranked clip of one scene's search.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub clip_id: String,
    pub fused_score: f32,
}

/// The chosen clip id per scene (`None`: the scene's search found nothing).
pub fn choose_distinct(hits_per_scene: &[Vec<Candidate>], reuse_margin: f32) -> Vec<Option<String>> {
    let mut used = HashSet::new();
    hits_per_scene
        .iter()
        .map(|hits| {
            let best = hits
                .iter()
                .max_by(|a, b| a.fused_score.total_cmp(&b.fused_score))?;
            let floor = best.fused_score - reuse_margin * best.fused_score.abs();
            let mut ranked: Vec<&Candidate> = hits.iter().collect();
            ranked.sort_by(|a, b| b.fused_score.total_cmp(&a.fused_score));
            let choice = ranked
                .into_iter()
                .find(|c| c.fused_score >= floor && !used.contains(&c.clip_id))
                .unwrap_or(best);
            used.insert(choice.clip_id.clone());
            Some(choice.clip_id.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(list: &[(&str, f32)]) -> Vec<Candidate> {
        list.iter()
            .map(|(id, s)| Candidate {
                clip_id: id.to_string(),
                fused_score: *s,
            })
            .collect()
    }

    #[test]
    fn scenes_take_distinct_clips_when_one_scores_close() {
        let scenes = vec![
            hits(&[("sea", 0.9), ("beach", 0.85)]),
            hits(&[("sea", 0.8), ("beach", 0.7), ("dune", 0.1)]),
            hits(&[("sea", 0.8), ("beach", 0.75)]),
        ];
        let chosen = choose_distinct(&scenes, 0.25);
        assert_eq!(
            chosen,
            vec![Some("sea".into()), Some("beach".into()), Some("sea".into())],
            "the third scene has no unused clip within the margin: the best is reused"
        );
    }

    #[test]
    fn a_far_worse_unused_clip_does_not_replace_a_good_one() {
        let scenes = vec![hits(&[("sea", 0.9)]), hits(&[("sea", 0.9), ("city", 0.2)])];
        assert_eq!(
            choose_distinct(&scenes, 0.25),
            vec![Some("sea".into()), Some("sea".into())]
        );
        assert_eq!(
            choose_distinct(&scenes, 0.9),
            vec![Some("sea".into()), Some("city".into())]
        );
    }

    #[test]
    fn a_scene_without_hits_gets_none() {
        assert_eq!(choose_distinct(&[Vec::new()], 0.25), vec![None]);
    }
}
