//! The few functions of libespeak-ng's `speak_lib.h` (API revision 12, espeak-ng 1.51)
//! that storyreel calls, declared by hand: the header is small and stable, and this
//! avoids a bindgen step in the build.

use std::os::raw::{c_char, c_int, c_short, c_uint, c_void};

/// `espeak_AUDIO_OUTPUT::AUDIO_OUTPUT_SYNCHRONOUS`: samples go to the callback, and
/// `espeak_Synth` returns when the text is spoken.
pub const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakINITIALIZE_DONT_EXIT`: report errors instead of calling `exit()`.
pub const INITIALIZE_DONT_EXIT: c_int = 0x8000;
pub const EE_OK: c_int = 0;
pub const CHARS_UTF8: c_uint = 1;
/// `espeakPHONEMES_IPA` as `espeak_TextToPhonemes`' phoneme mode.
pub const PHONEMES_IPA: c_int = 0x02;
/// `espeak_PARAMETER::espeakRATE`, words per minute.
pub const PARAM_RATE: c_int = 1;
pub const RATE_NORMAL: c_int = 175;
pub const RATE_MINIMUM: c_int = 80;
pub const RATE_MAXIMUM: c_int = 450;
/// `espeak_POSITION_TYPE::POS_CHARACTER`.
pub const POS_CHARACTER: c_int = 1;

/// `espeak_EVENT_TYPE::espeakEVENT_LIST_TERMINATED`: the end of an event list.
pub const EVENT_LIST_TERMINATED: c_int = 0;
/// `espeak_EVENT_TYPE::espeakEVENT_WORD`: a word starts (text and audio position).
pub const EVENT_WORD: c_int = 1;

/// `espeak_EVENT`: what the synthesis reached with the samples passed alongside.
#[repr(C)]
pub struct Event {
    pub kind: c_int,
    pub unique_identifier: c_uint,
    pub text_position: c_int,
    pub length: c_int,
    pub audio_position: c_int,
    pub sample: c_int,
    pub user_data: *mut c_void,
    pub id: [u8; 8],
}

/// `espeak_VOICE`, as a selection by properties (language only here).
#[repr(C)]
pub struct VoiceSpec {
    pub name: *const c_char,
    pub languages: *const c_char,
    pub identifier: *const c_char,
    pub gender: u8,
    pub age: u8,
    pub variant: u8,
    pub xx1: u8,
    pub score: c_int,
    pub spare: *mut c_void,
}

/// `t_espeak_callback`: return 0 to go on, 1 to abort the synthesis.
pub type SynthCallback =
    unsafe extern "C" fn(wav: *mut c_short, numsamples: c_int, events: *mut Event) -> c_int;

unsafe extern "C" {
    pub fn espeak_Initialize(output: c_int, buflength: c_int, path: *const c_char, options: c_int) -> c_int;
    pub fn espeak_SetSynthCallback(callback: SynthCallback);
    pub fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    pub fn espeak_SetVoiceByProperties(spec: *mut VoiceSpec) -> c_int;
    pub fn espeak_SetParameter(parameter: c_int, value: c_int, relative: c_int) -> c_int;
    pub fn espeak_Synth(
        text: *const c_void,
        size: usize,
        position: c_uint,
        position_type: c_int,
        end_position: c_uint,
        flags: c_uint,
        unique_identifier: *mut c_uint,
        user_data: *mut c_void,
    ) -> c_int;
    pub fn espeak_Synchronize() -> c_int;
    pub fn espeak_TextToPhonemes(
        textptr: *mut *const c_void,
        textmode: c_int,
        phonememode: c_int,
    ) -> *const c_char;
    pub fn espeak_Info(path_data: *mut *const c_char) -> *const c_char;
}
