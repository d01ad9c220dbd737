//! What the gateway's tests share: the workspace config, and what ffprobe finds in an MP4.

#![allow(dead_code)]

use std::{path::Path, process::Command};

/// The workspace's `config/` (the tests run in the crate's directory).
pub fn config_dir() -> String {
    format!("{}/../../config", env!("CARGO_MANIFEST_DIR"))
}

/// A stream as ffprobe reports it.
#[derive(Debug)]
pub struct Probed {
    pub codec_type: String,
    pub codec_name: String,
    pub duration_s: f64,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub pix_fmt: Option<String>,
}

pub fn ffprobe(video: &Path) -> Vec<Probed> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_streams", "-of", "json"])
        .arg(video)
        .output()
        .expect("ffprobe runs (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffprobe refused {}: {}",
        video.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Probed {
            codec_type: s["codec_type"].as_str().unwrap_or_default().into(),
            codec_name: s["codec_name"].as_str().unwrap_or_default().into(),
            duration_s: s["duration"]
                .as_str()
                .and_then(|d| d.parse().ok())
                .unwrap_or(f64::NAN),
            width: s["width"].as_u64(),
            height: s["height"].as_u64(),
            pix_fmt: s["pix_fmt"].as_str().map(str::to_string),
        })
        .collect()
}

/// The subtitle text of the MP4's first subtitle stream, as ffmpeg reads it back.
pub fn subtitle_words(video: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(video)
        .args(["-map", "0:s:0", "-f", "srt", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("-->") && l.trim().parse::<u32>().is_err())
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Checks what every finished video must be; returns the three streams.
pub fn assert_complete_video(video: &Path, width: u64, height: u64, story: &[String]) {
    let streams = ffprobe(video);
    let kinds: Vec<(&str, &str)> = streams
        .iter()
        .map(|s| (s.codec_type.as_str(), s.codec_name.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("video", "h264"), ("audio", "aac"), ("subtitle", "mov_text")]
    );
    let video_stream = &streams[0];
    assert_eq!(
        (video_stream.width, video_stream.height),
        (Some(width), Some(height))
    );
    assert_eq!(video_stream.pix_fmt.as_deref(), Some("yuv420p"));
    let durations: Vec<f64> = streams.iter().map(|s| s.duration_s).collect();
    let (min, max) = durations
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &d| (a.min(d), b.max(d)));
    assert!(
        max - min <= 0.1,
        "stream durations {durations:?} differ by more than 0.1 s"
    );
    assert!(
        min > 0.5,
        "a narrated scene lasts more than half a second: {durations:?}"
    );
    let words: Vec<String> = story
        .iter()
        .flat_map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert_eq!(subtitle_words(video), words, "the subtitles are the story");
    // faststart: the index (moov) before the media data (mdat)
    let bytes = std::fs::read(video).unwrap();
    let at = |tag: &[u8]| bytes.windows(4).position(|w| w == tag).unwrap_or(usize::MAX);
    assert!(at(b"moov") < at(b"mdat"), "moov must precede mdat (faststart)");
}
