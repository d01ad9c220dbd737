//! Text before speech: [`sentences`] splits a scene at sentence boundaries (and over-long
//! sentences at clause boundaries); [`normalize`] spells out numbers and abbreviations.

pub mod normalize;
pub mod sentences;

pub use normalize::normalize;
pub use sentences::split_sentences;
