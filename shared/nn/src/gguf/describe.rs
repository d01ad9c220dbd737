//! A human-readable summary of a GGUF file (`storyreel-convert gguf-info`): header,
//! metadata with long arrays shortened, and the tensor table.

use super::{GgufFile, GgufValue};
use std::fmt::Write;

/// Array elements shown before the rest are counted.
const SHOWN_ELEMENTS: usize = 8;
/// Characters of a string value shown before it is cut.
const SHOWN_CHARS: usize = 120;

pub fn describe(file: &GgufFile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gguf v{}, {} metadata entries, {} tensors, alignment {}",
        file.version(),
        file.metadata().len(),
        file.tensors().len(),
        file.alignment()
    );
    for (key, value) in file.metadata() {
        let _ = writeln!(out, "  {key}: {} = {}", value.type_description(), short(value));
    }
    for info in file.tensors() {
        let _ = writeln!(
            out,
            "  tensor {} {} {:?} @ {}",
            info.name,
            info.ggml_type,
            info.shape(),
            info.offset
        );
    }
    out
}

fn short(value: &GgufValue) -> String {
    match value {
        GgufValue::Array { values, .. } => {
            let shown: Vec<String> = values.iter().take(SHOWN_ELEMENTS).map(short).collect();
            let more = values.len().saturating_sub(SHOWN_ELEMENTS);
            if more > 0 {
                format!("[{}, ... {more} more]", shown.join(", "))
            } else {
                format!("[{}]", shown.join(", "))
            }
        }
        GgufValue::String(s) if s.chars().count() > SHOWN_CHARS => {
            format!("{:?}...", s.chars().take(SHOWN_CHARS).collect::<String>())
        }
        other => other.to_json().to_string(),
    }
}
