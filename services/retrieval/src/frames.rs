//! A clip's sampled frames on disk, and the reference-frame tensor made from them.
//!
//! `frames/<clip_id>/000.png ...` plus `frames.json` (count, size, times). Ingest writes
//! them into a fresh `<clip_id>.tmp-<n>` directory and renames it over the old one, so a
//! re-ingest never leaves a mix. At search time ffmpeg scales every stored frame to cover
//! the requested size and centre-crops it (no distortion); frames are then picked evenly
//! (repeated when more are asked for than were stored) and laid out as u8 (F, 3, H, W).

use crate::{error::RetrievalError, media::Tools};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FramesMeta {
    pub count: u32,
    pub width: u32,
    pub height: u32,
    pub times_s: Vec<f64>,
}

/// The directory of `clip_id`'s frames (ids are validated: `[A-Za-z0-9._-]`, not `.`/`..`).
pub fn clip_dir(frames_dir: &Path, clip_id: &str) -> PathBuf {
    frames_dir.join(clip_id)
}

/// Samples a clip's frames and moves them into place; returns their metadata.
pub fn store_clip_frames(
    tools: &Tools,
    frames_dir: &Path,
    clip_id: &str,
    video: &Path,
    duration_s: f64,
    count: u32,
    max_side: u32,
) -> Result<FramesMeta, crate::media::MediaError> {
    use crate::media::MediaError;
    let tmp = frames_dir.join(format!(
        ".{clip_id}.tmp-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let io = |what: &str, e: std::io::Error| MediaError::Tool(format!("{what} {}: {e}", tmp.display()));
    std::fs::create_dir_all(&tmp).map_err(|e| io("creating", e))?;
    let result = (|| {
        let written = tools.sample_frames(video, duration_s, count, max_side, &tmp)?;
        let first = std::fs::read(tmp.join("000.png")).map_err(|e| io("reading", e))?;
        let (width, height) =
            png_size(&first).ok_or_else(|| MediaError::Tool("ffmpeg wrote a PNG without an IHDR".into()))?;
        let meta = FramesMeta {
            count: written,
            width,
            height,
            times_s: (0..written)
                .map(|i| i as f64 * duration_s / count as f64)
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&meta).expect("serialisable");
        std::fs::write(tmp.join("frames.json"), json).map_err(|e| io("writing frames.json in", e))?;
        let dest = clip_dir(frames_dir, clip_id);
        if dest.exists() {
            std::fs::remove_dir_all(&dest).map_err(|e| io("removing the old frames beside", e))?;
        }
        std::fs::rename(&tmp, &dest).map_err(|e| io("renaming", e))?;
        Ok(meta)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// The metadata of a clip's stored frames.
pub fn read_meta(frames_dir: &Path, clip_id: &str) -> Result<FramesMeta, RetrievalError> {
    let path = clip_dir(frames_dir, clip_id).join("frames.json");
    let bytes = std::fs::read(&path).map_err(|e| RetrievalError::io("reading", &path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| RetrievalError::Frames {
        clip_id: clip_id.to_string(),
        message: format!("{}: {e}", path.display()),
    })
}

/// The reference frames of a clip: u8 (F, 3, H, W) bytes and each frame's time.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceFrames {
    pub data: Vec<u8>,
    pub count: u32,
    pub width: u32,
    pub height: u32,
    pub times_s: Vec<f64>,
}

/// Loads `count` frames of `clip_id` at `width` x `height`.
pub fn reference_frames(
    tools: &Tools,
    frames_dir: &Path,
    clip_id: &str,
    width: u32,
    height: u32,
    count: u32,
) -> Result<ReferenceFrames, RetrievalError> {
    let meta = read_meta(frames_dir, clip_id)?;
    let hwc = tools
        .load_scaled(&clip_dir(frames_dir, clip_id), meta.count, width, height)
        .map_err(|e| RetrievalError::Frames {
            clip_id: clip_id.to_string(),
            message: e.to_string(),
        })?;
    let picks = pick_evenly(meta.count, count);
    let data = to_fchw(&hwc, &picks, width as usize, height as usize);
    Ok(ReferenceFrames {
        data,
        count,
        width,
        height,
        times_s: picks
            .iter()
            .map(|&i| meta.times_s.get(i).copied().unwrap_or(0.0))
            .collect(),
    })
}

/// `wanted` indices spread evenly over `stored` frames (repeating when wanted > stored).
pub fn pick_evenly(stored: u32, wanted: u32) -> Vec<usize> {
    (0..wanted)
        .map(|j| (((j as f64 + 0.5) * stored as f64 / wanted as f64) as usize).min(stored as usize - 1))
        .collect()
}

/// Frames `picks` of frame-major HWC RGB bytes, as (F, 3, H, W).
pub fn to_fchw(hwc: &[u8], picks: &[usize], width: usize, height: usize) -> Vec<u8> {
    let plane = width * height;
    let mut out = vec![0u8; picks.len() * 3 * plane];
    for (f, &src) in picks.iter().enumerate() {
        let frame = &hwc[src * plane * 3..(src + 1) * plane * 3];
        let dst = &mut out[f * 3 * plane..(f + 1) * 3 * plane];
        for (p, rgb) in frame.chunks_exact(3).enumerate() {
            dst[p] = rgb[0];
            dst[plane + p] = rgb[1];
            dst[2 * plane + p] = rgb[2];
        }
    }
    out
}

/// Width and height from a PNG's IHDR.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&bytes[16..20]), be(&bytes[20..24])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_are_even_and_repeat_when_needed() {
        assert_eq!(pick_evenly(16, 4), vec![2, 6, 10, 14]);
        assert_eq!(pick_evenly(2, 4), vec![0, 0, 1, 1]);
        assert_eq!(pick_evenly(1, 3), vec![0, 0, 0]);
        assert_eq!(pick_evenly(5, 5), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn hwc_becomes_fchw() {
        // two 2x1 frames: pixels (r,g,b) = (f*10 + p, 100 + p, 200 + p)
        let hwc = [0, 100, 200, 1, 101, 201, 10, 100, 200, 11, 101, 201];
        let out = to_fchw(&hwc, &[1, 0], 2, 1);
        assert_eq!(out, vec![10, 11, 100, 101, 200, 201, 0, 1, 100, 101, 200, 201]);
    }

    #[test]
    fn png_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640u32.to_be_bytes());
        png.extend_from_slice(&360u32.to_be_bytes());
        assert_eq!(png_size(&png), Some((640, 360)));
        assert_eq!(png_size(b"GIF89a"), None);
    }
}
