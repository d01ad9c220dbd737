//! The tts stage cache (DESIGN.md §4): a Synthesize call's outputs stored under a
//! content-addressed key, so a repeated request is answered from the tensor store without
//! speaking again.
//!
//! The key covers the voice's model (name, version, weights sha256) and everything that
//! shapes the samples: each scene's index and sentences (as given and as spoken), the
//! speaking rate, the output sample rate, the pause between sentences and, for a voice
//! whose output depends on it ([`VoiceDescription::seeded`]), the seed. An entry holds per
//! scene (by position in the request) `audio-{p}`, the samples, and `segments-{p}`, the
//! sentence bounds in samples: `[n, start_0, end_0, .., start_{n-1}, end_{n-1}]` as i64,
//! and `words-{p}`, each written word's bounds in samples in the same layout. The sentence
//! texts and words come from the request, which the key covers.

use crate::{
    error::TtsError,
    service::{SceneAudio, Segment, WordTiming},
    voice::VoiceDescription,
    worker::Job,
};
use serde::Serialize;
use storyreel_tensors::{CacheKey, NamedRef, StageCache, Tensor, TensorStore, stage_cache::find_output};

/// The entry layout below; bumped when it changes, so old entries stop matching.
const LAYOUT: u32 = 2;

#[derive(Serialize)]
struct KeyParams<'a> {
    layout: u32,
    voice: &'a str,
    scenes: Vec<KeyScene<'a>>,
    rate: f32,
    sample_rate: u32,
    pause_ms: u32,
    /// `None` for a voice that ignores the seed, so any seed hits its entries.
    seed: Option<u64>,
}

#[derive(Serialize)]
struct KeyScene<'a> {
    index: u32,
    /// (as given, as spoken) per sentence.
    sentences: Vec<(&'a str, &'a str)>,
}

/// The entry key of `job` spoken by `voice`; `None` when the cache is off for the call.
pub fn key(
    cache: &StageCache,
    voice: &VoiceDescription,
    job: &Job,
    bypass: bool,
) -> Result<Option<CacheKey>, TtsError> {
    let params = KeyParams {
        layout: LAYOUT,
        voice: &job.voice,
        scenes: job
            .scenes
            .iter()
            .map(|scene| KeyScene {
                index: scene.index,
                sentences: scene
                    .sentences
                    .iter()
                    .map(|s| (s.text.as_str(), s.spoken.as_str()))
                    .collect(),
            })
            .collect(),
        rate: job.rate,
        sample_rate: job.sample_rate,
        pause_ms: job.pause_ms,
        seed: voice.seeded.then_some(job.seed),
    };
    Ok(cache.key(&voice.model.cache_identity(), &params, &[], bypass)?)
}

fn audio_name(position: usize) -> String {
    format!("audio-{position}")
}

fn segments_name(position: usize) -> String {
    format!("segments-{position}")
}

fn words_name(position: usize) -> String {
    format!("words-{position}")
}

/// One scene's samples, sentence bounds and word bounds (in samples), as the service
/// made them.
pub struct SpokenScene<'a> {
    pub samples: &'a [f32],
    pub bounds: Vec<(usize, usize)>,
    pub words: Vec<(usize, usize)>,
}

/// `[n, start_0, end_0, ..]` of `bounds`.
fn bounds_tensor(bounds: &[(usize, usize)]) -> Result<Tensor, TtsError> {
    let mut flat = vec![bounds.len() as i64];
    for &(start, end) in bounds {
        flat.extend([start as i64, end as i64]);
    }
    Ok(Tensor::from_slice(vec![flat.len()], &flat)?)
}

/// The `n` bounds of [`bounds_tensor`]'s layout, when they are `n` ordered spans within
/// `total` samples.
fn read_bounds(flat: &[i64], n: usize, total: i64) -> Option<Vec<(usize, usize)>> {
    let fits = flat.len() == 1 + 2 * n
        && flat[0] == n as i64
        && flat[1..]
            .chunks(2)
            .all(|b| 0 <= b[0] && b[0] <= b[1] && b[1] <= total);
    fits.then(|| {
        flat[1..]
            .chunks(2)
            .map(|b| (b[0] as usize, b[1] as usize))
            .collect()
    })
}

/// The tensors of an entry for `scenes` (in request order).
pub fn outputs(scenes: &[SpokenScene<'_>]) -> Result<Vec<(String, Tensor)>, TtsError> {
    let mut out = Vec::with_capacity(3 * scenes.len());
    for (position, scene) in scenes.iter().enumerate() {
        out.push((
            audio_name(position),
            Tensor::from_slice(vec![scene.samples.len()], scene.samples)?,
        ));
        out.push((segments_name(position), bounds_tensor(&scene.bounds)?));
        out.push((words_name(position), bounds_tensor(&scene.words)?));
    }
    Ok(out)
}

/// The scenes of `job` from its entry's refs; `None` when the entry does not fit the job
/// (a missing output, or bounds that do not match the sentences or the audio), so the
/// caller speaks again.
pub async fn scenes(
    store: &dyn TensorStore,
    job: &Job,
    refs: &[NamedRef],
) -> Result<Option<Vec<SceneAudio>>, TtsError> {
    let find = |name: String| find_output(refs, &name);
    let mut audio = Vec::with_capacity(job.scenes.len());
    let mut bound_refs = Vec::with_capacity(2 * job.scenes.len());
    for position in 0..job.scenes.len() {
        match (
            find(audio_name(position)),
            find(segments_name(position)),
            find(words_name(position)),
        ) {
            (Some(a), Some(s), Some(w)) => {
                audio.push(a);
                bound_refs.extend([s, w]);
            }
            _ => return Ok(None),
        }
    }
    let bounds = store.get_many(&bound_refs).await?;
    let mut out = Vec::with_capacity(job.scenes.len());
    for ((scene, audio), bounds) in job.scenes.iter().zip(audio).zip(bounds.chunks(2)) {
        let total = audio.numel() as i64;
        let (sentence_bounds, word_bounds): (Vec<i64>, Vec<i64>) = (bounds[0].to_vec()?, bounds[1].to_vec()?);
        let words: Vec<&str> = scene
            .sentences
            .iter()
            .flat_map(|s| s.words.iter().map(|w| w.original.as_str()))
            .collect();
        let (Some(sentence_bounds), Some(word_bounds)) = (
            read_bounds(&sentence_bounds, scene.sentences.len(), total),
            read_bounds(&word_bounds, words.len(), total),
        ) else {
            return Ok(None);
        };
        let segments = scene
            .sentences
            .iter()
            .zip(sentence_bounds)
            .map(|(sentence, (start, end))| {
                Segment::from_samples(sentence.text.clone(), start, end, job.sample_rate)
            })
            .collect();
        let words = words
            .into_iter()
            .zip(word_bounds)
            .map(|(word, (start, end))| {
                WordTiming::from_samples(word.to_string(), start, end, job.sample_rate)
            })
            .collect();
        out.push(SceneAudio {
            scene_index: scene.index,
            duration_s: total as f64 / job.sample_rate as f64,
            audio,
            sample_rate: job.sample_rate,
            segments,
            words,
        });
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        voice::Backend,
        worker::{SceneText, Sentence},
    };
    use storyreel_runtime::ModelInfo;
    use storyreel_tensors::{MemoryStore, StoreConfig};

    fn voice(seeded: bool) -> VoiceDescription {
        VoiceDescription {
            id: "piper:test".into(),
            display_name: "test".into(),
            backend: Backend::Piper,
            languages: vec!["en-us".into()],
            native_sample_rate: 22050,
            licence: "-".into(),
            model: ModelInfo {
                name: "piper-test".into(),
                version: "1".into(),
                weights_sha256: "0".repeat(64),
                components: Vec::new(),
                random_init: false,
            },
            seeded,
        }
    }

    fn sentence(text: &str) -> Sentence {
        Sentence::new(text.into())
    }

    fn job() -> Job {
        Job {
            voice: "piper:test".into(),
            scenes: vec![
                SceneText {
                    index: 3,
                    sentences: vec![sentence("One."), sentence("Two.")],
                },
                SceneText {
                    index: 4,
                    sentences: vec![sentence("Three.")],
                },
            ],
            rate: 1.0,
            sample_rate: 100,
            seed: 9,
            pause_ms: 250,
        }
    }

    fn store() -> MemoryStore {
        MemoryStore::new(&StoreConfig::default()).unwrap()
    }

    fn cache() -> StageCache {
        StageCache::new(std::sync::Arc::new(store()), "tts", true)
    }

    #[test]
    fn the_key_covers_what_shapes_the_samples() {
        let cache = cache();
        let key = |voice: &VoiceDescription, job: &Job| key(&cache, voice, job, false).unwrap().unwrap();
        let (seeded, unseeded) = (voice(true), voice(false));
        let base = job();
        let reseeded = Job { seed: 10, ..job() };
        assert_eq!(key(&seeded, &base), key(&seeded, &base));
        assert_ne!(key(&seeded, &base), key(&seeded, &reseeded));
        assert_eq!(key(&unseeded, &base), key(&unseeded, &reseeded));
        let changes: [fn(&mut Job); 5] = [
            |j| j.rate = 1.5,
            |j| j.sample_rate = 16000,
            |j| j.pause_ms = 0,
            |j| j.scenes[1].index = 5,
            |j| j.scenes[0].sentences[1].spoken = "two!".into(),
        ];
        for change in changes {
            let mut changed = job();
            change(&mut changed);
            assert_ne!(key(&unseeded, &base), key(&unseeded, &changed));
        }
        let mut retrained = voice(false);
        retrained.model.weights_sha256 = "1".repeat(64);
        assert_ne!(key(&unseeded, &base), key(&retrained, &base));
    }

    #[tokio::test]
    async fn an_entry_gives_back_the_scenes_and_refuses_what_does_not_fit() {
        let cache = cache();
        let store = cache.store().clone();
        let store = store.as_ref();
        let job = job();
        let entry = key(&cache, &voice(true), &job, false).unwrap().unwrap();
        let first = [0.1f32; 250];
        let second = [0.2f32; 80];
        let spoken = [
            SpokenScene {
                samples: &first,
                bounds: vec![(0, 100), (125, 250)],
                words: vec![(10, 90), (130, 240)],
            },
            SpokenScene {
                samples: &second,
                bounds: vec![(0, 80)],
                words: vec![(5, 75)],
            },
        ];
        let refs = cache.fill(&entry, &outputs(&spoken).unwrap()).await.unwrap();
        let scenes = scenes(store, &job, &refs).await.unwrap().expect("the entry fits");
        assert_eq!(scenes.len(), 2);
        assert_eq!(scenes[0].scene_index, 3);
        assert_eq!(scenes[0].duration_s, 2.5);
        assert_eq!(scenes[1].sample_rate, 100);
        let texts: Vec<_> = scenes[0].segments.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["One.", "Two."]);
        assert_eq!(
            (scenes[0].segments[1].start_s, scenes[0].segments[1].end_s),
            (1.25, 2.5)
        );
        let words: Vec<_> = scenes[0]
            .words
            .iter()
            .map(|w| (w.word.as_str(), w.start_s, w.end_s))
            .collect();
        assert_eq!(words, [("One.", 0.1, 0.9), ("Two.", 1.3, 2.4)]);
        let audio: Vec<f32> = store.get(&scenes[1].audio).await.unwrap().to_vec().unwrap();
        assert_eq!(audio, second);

        // a job with another sentence count, or an entry without a scene, does not fit
        let mut longer = job.clone();
        longer.scenes[1].sentences.push(sentence("Four."));
        assert!(scenes_of(store, &longer, &refs).await.is_none());
        let partial: Vec<NamedRef> = refs.iter().filter(|(n, _)| n != "audio-1").cloned().collect();
        assert!(scenes_of(store, &job, &partial).await.is_none());
        let wordless: Vec<NamedRef> = refs.iter().filter(|(n, _)| n != "words-0").cloned().collect();
        assert!(scenes_of(store, &job, &wordless).await.is_none());
    }

    async fn scenes_of(store: &dyn TensorStore, job: &Job, refs: &[NamedRef]) -> Option<Vec<SceneAudio>> {
        scenes(store, job, refs).await.unwrap()
    }
}
