//! ffprobe and ffmpeg, as child processes with a timeout: probing a clip, sampling its
//! frames to PNG at ingest, and scaling stored frames to the requested size at search.

use serde::Deserialize;
use std::{
    io::Read,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// What ffprobe says about a clip's first video stream.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration_s: f64,
}

/// Why a tool run did not give what was needed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MediaError {
    /// The file is not a decodable video (ffprobe/ffmpeg refused it, no video stream).
    #[error("{0}")]
    InvalidVideo(String),
    /// The video has no usable duration or is shorter than the minimum.
    #[error("{0}")]
    TooShort(String),
    /// The tool could not be run, timed out, or failed for another reason.
    #[error("{0}")]
    Tool(String),
}

/// The ffprobe/ffmpeg executables and their timeout.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffprobe: String,
    pub ffmpeg: String,
    pub timeout: Duration,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<ProbeStream>,
    format: Option<ProbeFormat>,
}

#[derive(Deserialize)]
struct ProbeStream {
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct ProbeFormat {
    duration: Option<String>,
}

impl Tools {
    /// Probes `path`: the first video stream's codec, size, frame rate and duration.
    pub fn probe(&self, path: &Path) -> Result<VideoInfo, MediaError> {
        let out = run(
            Command::new(&self.ffprobe)
                .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
                .arg("stream=codec_name,width,height,avg_frame_rate,r_frame_rate,duration:format=duration")
                .args(["-of", "json"])
                .arg(path),
            self.timeout,
        )?;
        if !out.success {
            return Err(MediaError::InvalidVideo(format!(
                "ffprobe: {}",
                first_line(&out.stderr, "exit status non-zero")
            )));
        }
        let probe: Probe = serde_json::from_slice(&out.stdout)
            .map_err(|e| MediaError::Tool(format!("ffprobe printed unparsable JSON: {e}")))?;
        let Some(stream) = probe.streams.into_iter().next() else {
            return Err(MediaError::InvalidVideo("ffprobe: no video stream".into()));
        };
        let (width, height) = match (stream.width, stream.height) {
            (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
            _ => {
                return Err(MediaError::InvalidVideo(
                    "ffprobe: the video stream has no size".into(),
                ));
            }
        };
        let fps = [&stream.avg_frame_rate, &stream.r_frame_rate]
            .into_iter()
            .flatten()
            .filter_map(|r| parse_rate(r))
            .next()
            .unwrap_or(0.0);
        let duration_s = stream
            .duration
            .as_deref()
            .or(probe.format.as_ref().and_then(|f| f.duration.as_deref()))
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
            .ok_or_else(|| MediaError::TooShort("ffprobe: the video has no duration".into()))?;
        Ok(VideoInfo {
            codec: stream.codec_name.unwrap_or_default(),
            width,
            height,
            fps,
            duration_s,
        })
    }

    /// Samples `count` frames evenly over `duration_s` (at `i * duration / count`) into
    /// `out_dir/000.png ...`, scaled so the longer side is at most `max_side`. Returns the
    /// number of frames written (ffmpeg may give fewer at the very end).
    pub fn sample_frames(
        &self,
        path: &Path,
        duration_s: f64,
        count: u32,
        max_side: u32,
        out_dir: &Path,
    ) -> Result<u32, MediaError> {
        let rate = count as f64 / duration_s;
        let filter = format!(
            "fps={rate:.9},scale='min(iw,{max_side})':'min(ih,{max_side})':force_original_aspect_ratio=decrease:force_divisible_by=2"
        );
        let out = run(
            Command::new(&self.ffmpeg)
                .args(["-v", "error", "-nostdin", "-y", "-i"])
                .arg(path)
                .args(["-an", "-vf", &filter, "-frames:v", &count.to_string()])
                .args(["-start_number", "0"])
                .arg(out_dir.join("%03d.png")),
            self.timeout,
        )?;
        let written = std::fs::read_dir(out_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
                    .count() as u32
            })
            .unwrap_or(0);
        if !out.success || written == 0 {
            return Err(MediaError::InvalidVideo(format!(
                "ffmpeg decoded no frames: {}",
                first_line(&out.stderr, "no error output")
            )));
        }
        Ok(written)
    }

    /// Reads `dir/000.png ..` (`stored` frames), each scaled to cover `width` x `height`
    /// and centre-cropped: `stored * height * width * 3` bytes of RGB, frame-major (HWC).
    pub fn load_scaled(
        &self,
        dir: &Path,
        stored: u32,
        width: u32,
        height: u32,
    ) -> Result<Vec<u8>, MediaError> {
        let filter = format!(
            "scale={width}:{height}:force_original_aspect_ratio=increase:flags=bicubic,crop={width}:{height}"
        );
        let out = run(
            Command::new(&self.ffmpeg)
                .args([
                    "-v",
                    "error",
                    "-nostdin",
                    "-framerate",
                    "1",
                    "-start_number",
                    "0",
                    "-i",
                ])
                .arg(dir.join("%03d.png"))
                .args(["-frames:v", &stored.to_string(), "-vf", &filter])
                .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]),
            self.timeout,
        )?;
        let expected = stored as usize * height as usize * width as usize * 3;
        if !out.success || out.stdout.len() != expected {
            return Err(MediaError::Tool(format!(
                "ffmpeg gave {} bytes of frames, expected {expected}: {}",
                out.stdout.len(),
                first_line(&out.stderr, "no error output")
            )));
        }
        Ok(out.stdout)
    }
}

struct Output {
    success: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Runs `cmd`, reading its output on threads, killing it after `timeout`.
fn run(cmd: &mut Command, timeout: Duration) -> Result<Output, MediaError> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| MediaError::Tool(format!("cannot run `{name}`: {e} (is ffmpeg installed?)")))?;
    let reader = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = reader(Box::new(child.stdout.take().expect("piped")));
    let stderr = reader(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(MediaError::Tool(format!(
                    "`{name}` ran longer than {} s and was killed",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(MediaError::Tool(format!("waiting for `{name}`: {e}"))),
        }
    };
    Ok(Output {
        success: status.success(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// `"30000/1001"` or `"25"` -> frames per second; `0/0` -> None.
fn parse_rate(rate: &str) -> Option<f64> {
    let value = match rate.split_once('/') {
        Some((n, d)) => n.trim().parse::<f64>().ok()? / d.trim().parse::<f64>().ok()?,
        None => rate.trim().parse().ok()?,
    };
    (value.is_finite() && value > 0.0).then_some(value)
}

/// The first non-empty line of a tool's stderr, at most 300 characters.
fn first_line(stderr: &[u8], fallback: &str) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(fallback);
    line.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("25/1"), Some(25.0));
        assert!((parse_rate("30000/1001").unwrap() - 29.97).abs() < 0.01);
        assert_eq!(parse_rate("0/0"), None);
        assert_eq!(parse_rate("24"), Some(24.0));
    }

    #[test]
    fn a_missing_tool_is_a_tool_error() {
        let tools = Tools {
            ffprobe: "/nonexistent/ffprobe".into(),
            ffmpeg: "/nonexistent/ffmpeg".into(),
            timeout: Duration::from_secs(5),
        };
        let err = tools.probe(Path::new("/tmp/x.mp4")).unwrap_err();
        assert!(
            matches!(err, MediaError::Tool(ref m) if m.contains("cannot run")),
            "{err}"
        );
    }
}
