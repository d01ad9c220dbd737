//! Which source frame each output frame shows. A scene lasts exactly as long as its
//! narration: its F frames are spread evenly over its duration, each output frame (at
//! the job's fps, sampled at its middle) showing the scene frame under it. With a
//! crossfade of c seconds, the frames within c/2 of a cut blend the scene before (held
//! on its last frame) into the scene after (held on its first), so the cut's time, and
//! the total duration, stay where the narration puts them.

/// One scene on the timeline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneSpan {
    pub frames: usize,
    pub duration_s: f64,
}

/// A frame of a scene: (scene, frame).
pub type FrameAt = (usize, usize);

/// What one output frame shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shot {
    One(FrameAt),
    /// `(1 - alpha) * from + alpha * to`.
    Blend {
        from: FrameAt,
        to: FrameAt,
        alpha: f32,
    },
}

/// The output frames of `scenes` at `fps`: `round(total duration * fps)` of them, at
/// least one.
pub fn schedule(scenes: &[SceneSpan], fps: u32, crossfade_s: f64) -> Vec<Shot> {
    let starts: Vec<f64> = scenes
        .iter()
        .scan(0.0, |t, s| {
            let start = *t;
            *t += s.duration_s;
            Some(start)
        })
        .collect();
    let total: f64 = scenes.iter().map(|s| s.duration_s).sum();
    let count = ((total * fps as f64).round() as usize).max(1);
    let frame_at = |scene: usize, t: f64| -> FrameAt {
        let span = scenes[scene];
        let u = if span.duration_s > 0.0 {
            (t - starts[scene]) / span.duration_s
        } else {
            0.0
        };
        let index = (u * span.frames as f64)
            .floor()
            .clamp(0.0, (span.frames.max(1) - 1) as f64);
        (scene, index as usize)
    };
    (0..count)
        .map(|k| {
            let t = (k as f64 + 0.5) / fps as f64;
            let scene = starts.iter().rposition(|&s| s <= t).unwrap_or(0);
            // the nearest cut, and the fade around it (never wider than either scene)
            for cut in [scene, scene + 1] {
                if cut == 0 || cut >= scenes.len() {
                    continue;
                }
                let fade = crossfade_s
                    .min(scenes[cut - 1].duration_s)
                    .min(scenes[cut].duration_s);
                let begin = starts[cut] - fade / 2.0;
                if fade > 0.0 && t >= begin && t < begin + fade {
                    return Shot::Blend {
                        from: frame_at(cut - 1, t),
                        to: frame_at(cut, t),
                        alpha: ((t - begin) / fade) as f32,
                    };
                }
            }
            Shot::One(frame_at(scene, t))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scene_lasts_as_long_as_its_narration() {
        let scenes = [
            SceneSpan {
                frames: 5,
                duration_s: 2.0,
            },
            SceneSpan {
                frames: 3,
                duration_s: 1.5,
            },
        ];
        let shots = schedule(&scenes, 10, 0.0);
        assert_eq!(shots.len(), 35);
        let of_scene = |s: usize| {
            shots
                .iter()
                .filter(|x| matches!(x, Shot::One((i, _)) if *i == s))
                .count()
        };
        assert_eq!((of_scene(0), of_scene(1)), (20, 15));
        assert_eq!(shots[0], Shot::One((0, 0)));
        assert_eq!(shots[19], Shot::One((0, 4)));
        assert_eq!(shots[20], Shot::One((1, 0)));
        assert_eq!(shots[34], Shot::One((1, 2)));
        // source frames are shown in order, each for an equal share
        let firsts: Vec<usize> = shots[..20]
            .iter()
            .map(|s| match s {
                Shot::One((_, f)) => *f,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            firsts,
            [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]
        );
    }

    #[test]
    fn a_crossfade_blends_around_the_cut_without_moving_it() {
        let scenes = [
            SceneSpan {
                frames: 4,
                duration_s: 2.0,
            },
            SceneSpan {
                frames: 4,
                duration_s: 2.0,
            },
        ];
        let shots = schedule(&scenes, 10, 1.0);
        assert_eq!(shots.len(), 40);
        let blends: Vec<(usize, f32)> = shots
            .iter()
            .enumerate()
            .filter_map(|(k, s)| match s {
                Shot::Blend { from, to, alpha } => {
                    assert_eq!((from.0, to.0), (0, 1));
                    assert_eq!((from.1, to.1), (3, 0), "the last frame before, the first after");
                    Some((k, *alpha))
                }
                _ => None,
            })
            .collect();
        assert_eq!(blends.len(), 10, "1 s at 10 fps");
        assert_eq!(blends.first().unwrap().0, 15);
        assert!(blends.windows(2).all(|w| w[0].1 < w[1].1), "alpha rises");
        assert!(blends.iter().all(|(_, a)| (0.0..1.0).contains(a)));
    }
}
