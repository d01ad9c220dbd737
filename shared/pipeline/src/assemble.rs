//! One MP4 from a finished DAG, with ffmpeg: H.264 (yuv420p, faststart) frames at the
//! job's fps, AAC narration and mov_text subtitles of the story, and an .srt beside it.
//!
//! Frames are composed here ([`crate::timeline`]: each scene as long as its narration,
//! crossfades blended) and piped to ffmpeg as raw RGB, which scales and centre-crops them
//! to the output size. Everything is written into a hidden work directory in the output
//! directory and moved into place only when complete ([`Staged::commit`]): an
//! interrupted job (Ctrl-C, a failure) leaves no file that claims to be complete.

use crate::{
    dag::JobOutput,
    error::PipelineError,
    spec::{FrameSize, JobSpec},
    subtitles::{self, SceneText},
    timeline::{SceneSpan, Shot, schedule},
};
use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Instant,
};
use storyreel_tensors::{Tensor, TensorRef, TensorStore};
use tokio::io::AsyncWriteExt;

/// Where and with what the video is written.
#[derive(Debug, Clone, PartialEq)]
pub struct AssemblySettings {
    pub ffmpeg: PathBuf,
    pub out_dir: PathBuf,
    /// x264 constant rate factor (lower: better and larger).
    pub crf: u32,
    /// x264 preset.
    pub preset: String,
}

/// The finished files.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifacts {
    pub video: PathBuf,
    pub subtitles: PathBuf,
    pub report: PathBuf,
}

/// What the assembly measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AssemblyStats {
    pub duration_s: f64,
    pub frames: usize,
    pub seconds: f64,
}

/// A video written but not yet in place; dropped without [`Staged::commit`], it removes
/// its work directory.
pub struct Staged {
    work: PathBuf,
    committed: bool,
    pub artifacts: Artifacts,
    pub stats: AssemblyStats,
}

impl Staged {
    /// Writes `report` and moves the three files into place, the report last: a report
    /// on disk means the video and subtitles beside it are complete.
    pub async fn commit(mut self, report: &[u8]) -> Result<Artifacts, PipelineError> {
        let io = |what: &str, e: std::io::Error| PipelineError::Assembly(format!("{what}: {e}"));
        let staged_report = self.work.join("report.json");
        tokio::fs::write(&staged_report, report)
            .await
            .map_err(|e| io("writing the report", e))?;
        for (from, to) in [
            (self.work.join("video.mp4"), &self.artifacts.video),
            (self.work.join("subtitles.srt"), &self.artifacts.subtitles),
            (staged_report, &self.artifacts.report),
        ] {
            tokio::fs::rename(&from, to)
                .await
                .map_err(|e| io(&format!("moving {} to {}", from.display(), to.display()), e))?;
        }
        self.committed = true;
        let _ = tokio::fs::remove_dir_all(&self.work).await;
        Ok(self.artifacts.clone())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}

/// Removes a work directory unless disarmed.
struct WorkDir(Option<PathBuf>);

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Writes the video of `output` into a work directory of `settings.out_dir`.
pub async fn assemble(
    spec: &JobSpec,
    output: &JobOutput,
    store: Arc<dyn TensorStore>,
    settings: &AssemblySettings,
) -> Result<Staged, PipelineError> {
    let started = Instant::now();
    let io = |what: String| move |e: std::io::Error| PipelineError::Assembly(format!("{what}: {e}"));
    tokio::fs::create_dir_all(&settings.out_dir)
        .await
        .map_err(io(format!("creating {}", settings.out_dir.display())))?;
    let work = settings.out_dir.join(format!(".{}.partial", spec.job_id));
    let _ = tokio::fs::remove_dir_all(&work).await;
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(io(format!("creating {}", work.display())))?;
    let mut guard = WorkDir(Some(work.clone()));

    // Narration: one f32 stream; each scene as long as its audio.
    let mut audio: Vec<f32> = Vec::new();
    let mut sample_rate = None;
    let mut durations = Vec::new();
    for scene in &output.scenes {
        let samples = fetch(&store, &scene.narration.audio, "narration")
            .await?
            .to_vec::<f32>()
            .map_err(|e| PipelineError::Assembly(format!("scene {} narration: {e}", scene.index + 1)))?;
        match sample_rate {
            None => sample_rate = Some(scene.narration.sample_rate),
            Some(rate) if rate != scene.narration.sample_rate => {
                return Err(PipelineError::Assembly(format!(
                    "scene {} narration is at {} Hz, the others at {rate} Hz",
                    scene.index + 1,
                    scene.narration.sample_rate
                )));
            }
            Some(_) => {}
        }
        durations.push(samples.len() as f64 / scene.narration.sample_rate.max(1) as f64);
        audio.extend_from_slice(&samples);
    }
    let sample_rate = sample_rate.unwrap_or(22050);
    let audio_path = work.join("narration.f32");
    let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
    tokio::fs::write(&audio_path, bytes)
        .await
        .map_err(io("writing the narration".into()))?;

    // Subtitles.
    let mut start = 0.0;
    let texts: Vec<SceneText<'_>> = output
        .scenes
        .iter()
        .zip(&durations)
        .map(|(scene, &duration)| {
            let text = SceneText {
                start_s: start,
                duration_s: duration,
                text: &scene.text,
                segments: &scene.narration.segments,
                words: &scene.narration.words,
            };
            start += duration;
            text
        })
        .collect();
    let srt = subtitles::srt(&subtitles::cues(&texts));
    let srt_path = work.join("subtitles.srt");
    tokio::fs::write(&srt_path, &srt)
        .await
        .map_err(io("writing the subtitles".into()))?;

    // Frames.
    let first = &output
        .scenes
        .first()
        .ok_or_else(|| PipelineError::Assembly("no scenes".into()))?
        .frames;
    let (height, width) = frame_dims(first)?;
    let spans: Vec<SceneSpan> = output
        .scenes
        .iter()
        .zip(&durations)
        .map(|(scene, &duration_s)| {
            let (h, w) = frame_dims(&scene.frames)?;
            if (h, w) != (height, width) {
                return Err(PipelineError::Assembly(format!(
                    "scene {} frames are {w}x{h}, the first scene's {width}x{height}",
                    scene.index + 1
                )));
            }
            Ok(SceneSpan {
                frames: scene.frames.shape[0],
                duration_s,
            })
        })
        .collect::<Result<_, _>>()?;
    let shots = schedule(&spans, spec.fps, spec.crossfade_s as f64);

    let video_path = work.join("video.mp4");
    let mut child = tokio::process::Command::new(&settings.ffmpeg)
        .args(ffmpeg_args(
            spec,
            settings,
            FrameSize {
                width: width as u32,
                height: height as u32,
            },
            sample_rate,
            &audio_path,
            &srt_path,
            &video_path,
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            PipelineError::Assembly(format!(
                "starting {} (install ffmpeg; `make run` does): {e}",
                settings.ffmpeg.display()
            ))
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut frames = SceneFrames::new(&store, output);
    let mut buffer = vec![0u8; width * height * 3];
    let mut write_error = None;
    for shot in &shots {
        match *shot {
            Shot::One((scene, index)) => {
                let tensor = frames.get(scene).await?;
                to_rgb(tensor, index, &mut buffer);
            }
            Shot::Blend { from, to, alpha } => {
                let mut other = vec![0u8; buffer.len()];
                to_rgb(frames.get(from.0).await?, from.1, &mut buffer);
                to_rgb(frames.get(to.0).await?, to.1, &mut other);
                for (a, b) in buffer.iter_mut().zip(&other) {
                    *a = ((1.0 - alpha) * *a as f32 + alpha * *b as f32).round() as u8;
                }
            }
        }
        if let Err(e) = stdin.write_all(&buffer).await {
            write_error = Some(e);
            break;
        }
    }
    drop(stdin);
    let result = child
        .wait_with_output()
        .await
        .map_err(io("waiting for ffmpeg".into()))?;
    if !result.status.success() || write_error.is_some() {
        return Err(PipelineError::Assembly(format!(
            "ffmpeg failed ({}): {}",
            result.status,
            String::from_utf8_lossy(&result.stderr).trim()
        )));
    }
    let _ = tokio::fs::remove_file(&audio_path).await;
    guard.0 = None;
    let stem = settings.out_dir.join(&spec.job_id);
    Ok(Staged {
        work,
        committed: false,
        artifacts: Artifacts {
            video: stem.with_extension("mp4"),
            subtitles: stem.with_extension("srt"),
            report: stem.with_extension("json"),
        },
        stats: AssemblyStats {
            duration_s: durations.iter().sum(),
            frames: shots.len(),
            seconds: started.elapsed().as_secs_f64(),
        },
    })
}

#[allow(clippy::too_many_arguments)]
fn ffmpeg_args(
    spec: &JobSpec,
    settings: &AssemblySettings,
    input: FrameSize,
    sample_rate: u32,
    audio: &Path,
    srt: &Path,
    out: &Path,
) -> Vec<String> {
    let (w, h) = (spec.output.width, spec.output.height);
    let fps = spec.fps.to_string();
    let filter =
        format!("scale={w}:{h}:force_original_aspect_ratio=increase:flags=lanczos,crop={w}:{h},setsar=1");
    [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-video_size",
        &input.to_string(),
        "-framerate",
        &fps,
        "-i",
        "pipe:0",
        "-f",
        "f32le",
        "-ar",
        &sample_rate.to_string(),
        "-ac",
        "1",
        "-i",
        &audio.to_string_lossy(),
        "-i",
        &srt.to_string_lossy(),
        "-map",
        "0:v:0",
        "-map",
        "1:a:0",
        "-map",
        "2:s:0",
        "-vf",
        &filter,
        "-c:v",
        "libx264",
        "-preset",
        &settings.preset,
        "-crf",
        &settings.crf.to_string(),
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-c:s",
        "mov_text",
        "-metadata:s:s:0",
        "language=eng",
        "-metadata",
        &format!("title={}", spec.title),
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        &out.to_string_lossy(),
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

/// (H, W) of u8 (F, 3, H, W) frames.
fn frame_dims(frames: &TensorRef) -> Result<(usize, usize), PipelineError> {
    match frames.shape.as_slice() {
        [f, 3, h, w] if *f > 0 => Ok((*h, *w)),
        other => Err(PipelineError::Assembly(format!(
            "frames `{}` have shape {other:?}, expected (F, 3, H, W)",
            frames.key
        ))),
    }
}

/// Frame `index` of u8 (F, 3, H, W) `frames` as packed RGB into `out`.
fn to_rgb(frames: &Tensor, index: usize, out: &mut [u8]) {
    let (h, w) = (frames.shape()[2], frames.shape()[3]);
    let plane = h * w;
    let data = &frames.as_bytes()[index * 3 * plane..(index + 1) * 3 * plane];
    for (p, pixel) in out.chunks_exact_mut(3).enumerate() {
        pixel[0] = data[p];
        pixel[1] = data[plane + p];
        pixel[2] = data[2 * plane + p];
    }
}

async fn fetch(store: &Arc<dyn TensorStore>, r: &TensorRef, what: &str) -> Result<Tensor, PipelineError> {
    store.get(r).await.map_err(|source| PipelineError::Store {
        what: format!("{what} `{}`", r.key),
        source,
    })
}

/// Scenes' frames, fetched when first shown; at most two scenes held (a crossfade's).
struct SceneFrames<'a> {
    store: &'a Arc<dyn TensorStore>,
    output: &'a JobOutput,
    held: Vec<(usize, Tensor)>,
}

impl<'a> SceneFrames<'a> {
    fn new(store: &'a Arc<dyn TensorStore>, output: &'a JobOutput) -> Self {
        Self {
            store,
            output,
            held: Vec::new(),
        }
    }

    async fn get(&mut self, scene: usize) -> Result<&Tensor, PipelineError> {
        if let Some(i) = self.held.iter().position(|(s, _)| *s == scene) {
            return Ok(&self.held[i].1);
        }
        let frames = &self.output.scenes[scene].frames;
        let tensor = fetch(self.store, frames, &format!("scene {} frames", scene + 1)).await?;
        if tensor.dtype() != storyreel_tensors::DType::U8 {
            return Err(PipelineError::Assembly(format!(
                "scene {} frames are {}, expected u8",
                scene + 1,
                tensor.dtype().as_str()
            )));
        }
        self.held.retain(|(s, _)| s + 1 >= scene);
        self.held.push((scene, tensor));
        Ok(&self.held.last().expect("just pushed").1)
    }
}
