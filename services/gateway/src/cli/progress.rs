//! The job's progress on the terminal: a bar for the story, one per scene (its current
//! stage and that stage's steps), one for the narration and one for the video. Where
//! stderr is not a terminal (CI, a pipe) the bars are hidden and each finished stage is
//! a log line instead.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::{collections::HashMap, io::IsTerminal, sync::Mutex, time::Duration};
use storyreel_pipeline::progress::{Event, ProgressSink, Step};

pub struct Bars {
    multi: MultiProgress,
    terminal: bool,
    story: ProgressBar,
    narration: ProgressBar,
    scenes: Vec<ProgressBar>,
    video: ProgressBar,
    /// The stage each scene bar shows.
    current: Mutex<HashMap<u32, Step>>,
}

fn style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:>10} [{bar:28}] {pos:>3}/{len:<3} {msg}")
        .expect("a valid template")
        .progress_chars("=> ")
}

impl Bars {
    pub fn new(n_scenes: u32) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        let bar = |prefix: String, len: u64| {
            let bar = multi.add(ProgressBar::new(len).with_style(style()).with_prefix(prefix));
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        };
        let story = bar("story".into(), n_scenes as u64);
        story.set_message("starting the stages");
        let scenes = (0..n_scenes)
            .map(|i| bar(format!("scene {}", i + 1), 1))
            .collect();
        let narration = bar("narration".into(), n_scenes as u64);
        let video = bar("video".into(), 1);
        Bars {
            multi,
            terminal,
            story,
            narration,
            scenes,
            video,
            current: Mutex::new(HashMap::new()),
        }
    }

    pub fn loading(&self) {
        self.story.set_message("loading the models");
    }

    pub fn done(&self) {
        for bar in self.all() {
            bar.finish();
        }
    }

    pub fn abandon(&self) {
        for bar in self.all() {
            bar.abandon();
        }
    }

    fn all(&self) -> impl Iterator<Item = &ProgressBar> {
        [&self.story, &self.narration, &self.video]
            .into_iter()
            .chain(self.scenes.iter())
    }

    fn line(&self, text: String) {
        if self.terminal {
            self.multi.suspend(|| eprintln!("{text}"));
        } else {
            eprintln!("{text}");
        }
    }

    fn scene_bar(&self, scene: Option<u32>) -> Option<&ProgressBar> {
        self.scenes.get(scene? as usize)
    }
}

fn finished(cache_hit: bool, seconds: f64) -> String {
    if cache_hit {
        "cached".into()
    } else {
        format!("{seconds:.1} s")
    }
}

impl ProgressSink for Bars {
    fn emit(&self, event: Event) {
        match event {
            Event::Backend { backend, reason } => {
                self.line(format!(
                    "backend: {} ({reason})",
                    format!("{backend:?}").to_lowercase()
                ));
            }
            Event::Started {
                step: Step::Story, ..
            } => self.story.set_message("writing"),
            Event::Started {
                step: Step::Assembly, ..
            } => {
                for bar in &self.scenes {
                    bar.finish_with_message("done");
                }
                self.video.set_message("assembling with ffmpeg");
            }
            Event::Started {
                step: Step::Narration,
                ..
            } => self.narration.set_message("speaking"),
            Event::Started { step, scene } => {
                if let Some(bar) = self.scene_bar(scene) {
                    self.current
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(scene.unwrap_or(0), step);
                    bar.set_length(1);
                    bar.set_position(0);
                    bar.set_message(step.as_str());
                }
            }
            Event::Progress {
                step: Step::Story,
                done,
                total,
                ..
            } => {
                self.story.set_length(total as u64);
                self.story.set_position(done as u64);
            }
            Event::Progress {
                step,
                scene,
                done,
                total,
            } => {
                let current = scene.and_then(|s| {
                    self.current
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&s)
                        .copied()
                });
                if let (Some(bar), Some(current)) = (self.scene_bar(scene), current)
                    && current == step
                {
                    bar.set_length(total.max(1) as u64);
                    bar.set_position(done as u64);
                }
            }
            Event::Preview { scene, step, .. } => {
                if let Some(bar) = self.scene_bar(Some(scene)) {
                    bar.set_message(format!("keyframe (preview at step {step})"));
                }
            }
            Event::Finished {
                step,
                scene,
                cache_hit,
                seconds,
            } => {
                let how = finished(cache_hit, seconds);
                match step {
                    Step::Story => self.story.finish_with_message(how.clone()),
                    Step::Narration => {
                        self.narration.inc(1);
                        if self.narration.position() >= self.narration.length().unwrap_or(0) {
                            self.narration.finish_with_message("done");
                        }
                    }
                    Step::Assembly => self.video.finish_with_message(how.clone()),
                    _ => {
                        if let Some(bar) = self.scene_bar(scene) {
                            let length = bar.length().unwrap_or(1);
                            bar.set_position(length);
                            bar.set_message(format!("{} {how}", step.as_str()));
                        }
                    }
                }
                if !self.terminal {
                    let at = scene.map(|s| format!(" scene {}", s + 1)).unwrap_or_default();
                    eprintln!("storyreel: {}{at}: {how}", step.as_str());
                }
            }
            Event::SceneText { .. } => {}
        }
    }
}
