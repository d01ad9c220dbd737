//! ggml tensor types: their ids in a GGUF file, names, and block layouts.
//!
//! Every id ggml defines is named (so an unsupported tensor is reported as `Q4_K`, not `12`),
//! and every type with a fixed block layout has one, so tensor bounds are checked at open time
//! even for types this crate cannot dequantise.

use std::fmt;

/// A ggml type id as stored in a tensor info (`enum ggml_type` in ggml.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType(pub u32);

/// `(block elements, block bytes)` per type id, from ggml.c's `type_traits`.
const LAYOUTS: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
];

impl GgmlType {
    pub const F32: Self = Self(0);
    pub const F16: Self = Self(1);
    pub const Q4_0: Self = Self(2);
    pub const Q4_1: Self = Self(3);
    pub const Q8_0: Self = Self(8);
    pub const BF16: Self = Self(30);

    /// The types [`super::dequantize`] handles.
    pub const DEQUANTISABLE: &'static [Self] = &[
        Self::F32,
        Self::F16,
        Self::BF16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q8_0,
    ];
    pub(crate) const DEQUANTISABLE_NAMES: &'static str = "F32, F16, BF16, Q4_0, Q4_1, Q8_0";

    fn entry(self) -> Option<&'static (u32, &'static str, u64, u64)> {
        LAYOUTS.iter().find(|(id, ..)| *id == self.0)
    }

    /// ggml's name for the type, if this id is one ggml defines.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|(_, name, ..)| *name)
    }

    /// Elements per block and bytes per block, if known.
    pub fn block_layout(self) -> Option<(u64, u64)> {
        self.entry().map(|&(_, _, elems, bytes)| (elems, bytes))
    }

    pub fn is_dequantisable(self) -> bool {
        Self::DEQUANTISABLE.contains(&self)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} ({})", self.0),
            None => write!(f, "unknown type {}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_layouts_of_supported_types() {
        assert_eq!(GgmlType::Q4_1.block_layout(), Some((32, 20)));
        assert_eq!(GgmlType::Q8_0.block_layout(), Some((32, 34)));
        assert_eq!(GgmlType(12).to_string(), "Q4_K (12)");
        assert_eq!(GgmlType(99).to_string(), "unknown type 99");
        assert!(GgmlType::BF16.is_dequantisable());
        assert!(!GgmlType(12).is_dequantisable());
    }
}
