//! libespeak-ng, the one process-wide engine: speech synthesis (the espeak-ng voices) and
//! IPA phonemisation (the Piper voices). The library keeps global state and is not
//! thread-safe, so every call goes through [`Espeak::lock`].

mod ffi;

use std::{
    ffi::{CStr, CString, c_void},
    os::raw::{c_int, c_short},
    sync::{Mutex, MutexGuard, OnceLock},
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum EspeakError {
    #[error("libespeak-ng failed to initialise (is espeak-ng-data installed?)")]
    Init,
    #[error("espeak-ng has no voice `{0}`")]
    UnknownVoice(String),
    #[error("espeak-ng could not {what} (error {code})")]
    Call { what: &'static str, code: i32 },
    #[error("the text contains a NUL character")]
    Nul,
}

/// What the library reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspeakInfo {
    /// e.g. `1.51`.
    pub version: String,
    /// The espeak-ng-data directory in use.
    pub data_dir: String,
    /// Sample rate of synthesised speech, Hz.
    pub sample_rate: u32,
}

/// One clause as espeak-ng phonemises it, as piper's phonemiser sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// IPA phonemes; words separated by spaces.
    pub phonemes: String,
    /// The punctuation that ended the clause: `.`, `?`, `!`, `,`, `:`, `;`, or empty.
    pub terminator: String,
    /// True when the clause ends a sentence.
    pub end_of_sentence: bool,
}

/// The locked engine.
pub struct Espeak {
    info: EspeakInfo,
    voice: Option<String>,
}

static ENGINE: OnceLock<Result<Mutex<Espeak>, EspeakError>> = OnceLock::new();

/// Where a word starts, as libespeak-ng reports it while speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordEvent {
    /// Character offset (0-based) of the word in the text spoken.
    pub char_offset: usize,
    /// Milliseconds from the start of the synthesis.
    pub audio_ms: u64,
}

/// What one `espeak_Synth` call made: [`Espeak::synthesize`] passes it as user data.
#[derive(Default)]
struct Collected {
    samples: Vec<i16>,
    words: Vec<WordEvent>,
}

/// Called by libespeak-ng with each block of samples and the events they reach; the user
/// data of the events is the [`Collected`] that [`Espeak::synthesize`] passed to
/// `espeak_Synth`.
unsafe extern "C" fn collect(wav: *mut c_short, count: c_int, events: *mut ffi::Event) -> c_int {
    if events.is_null() {
        return 0;
    }
    // SAFETY: the library passes `count` samples at `wav` (when not null) and an event
    // list ended by EVENT_LIST_TERMINATED, whose user data is the pointer given to
    // `espeak_Synth`, alive for its whole call.
    unsafe {
        let out = (*events).user_data as *mut Collected;
        if out.is_null() {
            return 0;
        }
        let mut event = events;
        while (*event).kind != ffi::EVENT_LIST_TERMINATED {
            if (*event).kind == ffi::EVENT_WORD && (*event).text_position > 0 {
                (*out).words.push(WordEvent {
                    char_offset: (*event).text_position as usize - 1,
                    audio_ms: (*event).audio_position.max(0) as u64,
                });
            }
            event = event.add(1);
        }
        if !wav.is_null() && count > 0 {
            (*out)
                .samples
                .extend_from_slice(std::slice::from_raw_parts(wav, count as usize));
        }
    }
    0
}

impl Espeak {
    /// The engine, initialised on first use; blocks while another thread uses it.
    pub fn lock() -> Result<MutexGuard<'static, Espeak>, EspeakError> {
        let engine = ENGINE.get_or_init(|| {
            // SAFETY: plain calls into the library with valid (null) pointers; this runs once.
            unsafe {
                let rate = ffi::espeak_Initialize(
                    ffi::AUDIO_OUTPUT_SYNCHRONOUS,
                    0,
                    std::ptr::null(),
                    ffi::INITIALIZE_DONT_EXIT,
                );
                if rate <= 0 {
                    return Err(EspeakError::Init);
                }
                ffi::espeak_SetSynthCallback(collect);
                let mut data: *const std::os::raw::c_char = std::ptr::null();
                let version = ffi::espeak_Info(&mut data);
                let text = |p: *const std::os::raw::c_char| {
                    if p.is_null() {
                        String::new()
                    } else {
                        CStr::from_ptr(p).to_string_lossy().into_owned()
                    }
                };
                Ok(Mutex::new(Espeak {
                    info: EspeakInfo {
                        version: text(version),
                        data_dir: text(data),
                        sample_rate: rate as u32,
                    },
                    voice: None,
                }))
            }
        });
        match engine {
            Ok(mutex) => Ok(mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())),
            Err(err) => Err(err.clone()),
        }
    }

    pub fn info(&self) -> &EspeakInfo {
        &self.info
    }

    /// Selects a voice by espeak-ng name or language (`en-us`, `en-gb`, `de`, ...): a
    /// voice file name first, else the best voice for that language, as the CLI's `-v`.
    pub fn set_voice(&mut self, name: &str) -> Result<(), EspeakError> {
        if self.voice.as_deref() == Some(name) {
            return Ok(());
        }
        let c_name = CString::new(name).map_err(|_| EspeakError::Nul)?;
        // SAFETY: valid NUL-terminated strings that outlive the calls; the engine is locked.
        let code = unsafe {
            match ffi::espeak_SetVoiceByName(c_name.as_ptr()) {
                ffi::EE_OK => ffi::EE_OK,
                _ => {
                    let mut spec = ffi::VoiceSpec {
                        name: std::ptr::null(),
                        languages: c_name.as_ptr(),
                        identifier: std::ptr::null(),
                        gender: 0,
                        age: 0,
                        variant: 0,
                        xx1: 0,
                        score: 0,
                        spare: std::ptr::null_mut(),
                    };
                    ffi::espeak_SetVoiceByProperties(&mut spec)
                }
            }
        };
        if code != ffi::EE_OK {
            self.voice = None;
            return Err(EspeakError::UnknownVoice(name.to_string()));
        }
        self.voice = Some(name.to_string());
        Ok(())
    }

    /// Speaks `text` with the current voice at `rate` times the normal speed: 16-bit
    /// samples at [`EspeakInfo::sample_rate`]. Not bit-reproducible: libespeak-ng 1.51
    /// carries wave-generator state (pitch flutter, wave phase) from one utterance to the
    /// next, which no API call resets (not even `espeak_Initialize`), so the same text
    /// comes out a few samples longer or shorter and with other sample values.
    pub fn synthesize(&mut self, text: &str, rate: f32) -> Result<Vec<i16>, EspeakError> {
        Ok(self.synthesize_words(text, rate)?.0)
    }

    /// [`Espeak::synthesize`], with where each word starts (in order of speech).
    pub fn synthesize_words(
        &mut self,
        text: &str,
        rate: f32,
    ) -> Result<(Vec<i16>, Vec<WordEvent>), EspeakError> {
        let c_text = CString::new(text).map_err(|_| EspeakError::Nul)?;
        let wpm =
            ((ffi::RATE_NORMAL as f32 * rate).round() as c_int).clamp(ffi::RATE_MINIMUM, ffi::RATE_MAXIMUM);
        let mut collected = Collected::default();
        // SAFETY: the engine is locked; `c_text` and `collected` outlive the synchronous
        // call, during which the callback appends to `collected` through the user data.
        unsafe {
            let code = ffi::espeak_SetParameter(ffi::PARAM_RATE, wpm, 0);
            if code != ffi::EE_OK {
                return Err(EspeakError::Call {
                    what: "set the rate",
                    code,
                });
            }
            let code = ffi::espeak_Synth(
                c_text.as_ptr() as *const c_void,
                c_text.as_bytes_with_nul().len(),
                0,
                ffi::POS_CHARACTER,
                0,
                ffi::CHARS_UTF8,
                std::ptr::null_mut(),
                &mut collected as *mut Collected as *mut c_void,
            );
            if code != ffi::EE_OK {
                return Err(EspeakError::Call {
                    what: "synthesise",
                    code,
                });
            }
            let code = ffi::espeak_Synchronize();
            if code != ffi::EE_OK {
                return Err(EspeakError::Call {
                    what: "finish synthesis",
                    code,
                });
            }
        }
        Ok((collected.samples, collected.words))
    }

    /// IPA phonemes of `text`, clause by clause, with the current voice. espeak-ng 1.51
    /// does not report a clause's terminator (piper's patched 1.52 does), so it is read
    /// from the text the clause consumed: the punctuation that ends it, if any.
    pub fn phonemize(&mut self, text: &str) -> Result<Vec<Clause>, EspeakError> {
        let c_text = CString::new(text).map_err(|_| EspeakError::Nul)?;
        let bytes = c_text.as_bytes();
        let start = c_text.as_ptr() as usize;
        let mut pointer = c_text.as_ptr() as *const c_void;
        let mut clauses = Vec::new();
        while !pointer.is_null() {
            let from = pointer as usize - start;
            // SAFETY: `pointer` points into `c_text` (or is advanced by the library within
            // it); the engine is locked; the returned string is copied before the next call.
            let phonemes = unsafe {
                let out =
                    ffi::espeak_TextToPhonemes(&mut pointer, ffi::CHARS_UTF8 as c_int, ffi::PHONEMES_IPA);
                if out.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(out).to_string_lossy().into_owned()
                }
            };
            let to = if pointer.is_null() {
                bytes.len()
            } else {
                (pointer as usize - start).min(bytes.len())
            };
            let consumed = String::from_utf8_lossy(&bytes[from.min(to)..to]);
            // espeak-ng reads one character past a clause ("Hello, w"): drop it, then
            // spaces and closing quotes, and look at what ended the clause
            let mut clause = consumed.as_ref();
            if !pointer.is_null() {
                clause = clause.char_indices().last().map_or("", |(i, _)| &clause[..i]);
            }
            let terminator = clause
                .trim_end_matches(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | ')' | ']' | '”' | '’')
                })
                .chars()
                .last()
                .filter(|c| matches!(c, '.' | '?' | '!' | ',' | ':' | ';'))
                .map(String::from)
                .unwrap_or_default();
            let end_of_sentence = !matches!(terminator.as_str(), "," | ":" | ";");
            if phonemes.trim().is_empty() && terminator.is_empty() {
                continue;
            }
            clauses.push(Clause {
                phonemes,
                terminator,
                end_of_sentence,
            });
        }
        Ok(clauses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_and_phonemises() {
        let mut engine = Espeak::lock().unwrap();
        assert!(engine.info().version.starts_with("1."), "{:?}", engine.info());
        engine.set_voice("en-us").unwrap();
        let samples = engine.synthesize("Hello world.", 1.0).unwrap();
        let seconds = samples.len() as f32 / engine.info().sample_rate as f32;
        assert!((0.5..3.0).contains(&seconds), "{seconds} s");
        let clauses = engine.phonemize("Hello, world. How are you?").unwrap();
        let terminators: Vec<_> = clauses.iter().map(|c| c.terminator.as_str()).collect();
        assert_eq!(terminators, [",", ".", "?"]);
        assert_eq!(clauses.iter().filter(|c| c.end_of_sentence).count(), 2);
        assert!(clauses[0].phonemes.contains('h'), "{clauses:?}");
        // word events: character offsets (not bytes), audio times in order
        let (samples, words) = engine.synthesize_words("Hello café world.", 1.0).unwrap();
        let offsets: Vec<usize> = words.iter().map(|w| w.char_offset).collect();
        assert_eq!(offsets, [0, 6, 11], "{words:?}");
        let seconds = samples.len() as f32 / engine.info().sample_rate as f32;
        assert!(
            words.windows(2).all(|w| w[0].audio_ms < w[1].audio_ms),
            "{words:?}"
        );
        assert!(
            (words[2].audio_ms as f32) < seconds * 1000.0,
            "{words:?} in {seconds} s"
        );
        engine.set_voice("en-gb").unwrap();
        assert!(matches!(
            engine.set_voice("xx-nowhere"),
            Err(EspeakError::UnknownVoice(_))
        ));
    }
}
