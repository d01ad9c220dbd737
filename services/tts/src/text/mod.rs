//! Text before speech: [`sentences`] splits a scene at sentence boundaries (and over-long
//! sentences at clause boundaries); [`normalize`] spells out numbers, dates, money,
//! units and abbreviations token by token ([`numbers`], [`dates`], [`units`],
//! [`abbreviations`]), keeping which spoken words each written token became.

pub mod abbreviations;
pub mod dates;
pub mod normalize;
pub mod numbers;
pub mod sentences;
pub mod units;

pub use normalize::{NormalizedWord, normalize, normalize_words};
pub use sentences::split_sentences;
