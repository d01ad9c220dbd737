//! A seeded generator of synthetic clip captions and tags, for scale tests and benchmarks
//! (10k-1M clips without video). Captions are built as "<article> <adjective> <subject>
//! <action> <place>, <time>" from fixed vocabularies, so BM25 sees a realistic spread of
//! document frequencies: ~180 subjects, ~60 places, ~80 adjectives. The same seed gives
//! the same catalog.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ADJECTIVES: &[&str] = &[
    "red",
    "blue",
    "green",
    "yellow",
    "orange",
    "purple",
    "white",
    "black",
    "grey",
    "golden",
    "silver",
    "brown",
    "pink",
    "dark",
    "bright",
    "misty",
    "foggy",
    "sunny",
    "snowy",
    "rainy",
    "windy",
    "calm",
    "quiet",
    "busy",
    "old",
    "young",
    "small",
    "large",
    "tiny",
    "huge",
    "tall",
    "short",
    "wide",
    "narrow",
    "wooden",
    "stone",
    "glass",
    "metal",
    "ancient",
    "modern",
    "rusty",
    "shiny",
    "wet",
    "dry",
    "frozen",
    "warm",
    "cold",
    "hot",
    "wild",
    "tame",
    "lonely",
    "crowded",
    "empty",
    "colourful",
    "pale",
    "deep",
    "shallow",
    "steep",
    "flat",
    "curved",
    "striped",
    "spotted",
    "furry",
    "feathered",
    "smooth",
    "rough",
    "soft",
    "hard",
    "gentle",
    "fierce",
    "sleepy",
    "happy",
    "sad",
    "curious",
    "graceful",
    "clumsy",
    "noisy",
    "silent",
    "glowing",
    "shadowy",
];

const SUBJECTS: &[&str] = &[
    "dog",
    "cat",
    "horse",
    "cow",
    "sheep",
    "goat",
    "pig",
    "rabbit",
    "fox",
    "wolf",
    "bear",
    "deer",
    "moose",
    "elk",
    "squirrel",
    "mouse",
    "rat",
    "owl",
    "eagle",
    "hawk",
    "sparrow",
    "robin",
    "crow",
    "raven",
    "pigeon",
    "duck",
    "goose",
    "swan",
    "heron",
    "stork",
    "pelican",
    "seagull",
    "penguin",
    "parrot",
    "peacock",
    "chicken",
    "rooster",
    "turkey",
    "butterfly",
    "bee",
    "wasp",
    "ant",
    "beetle",
    "ladybird",
    "dragonfly",
    "spider",
    "snail",
    "frog",
    "toad",
    "lizard",
    "snake",
    "turtle",
    "tortoise",
    "crocodile",
    "fish",
    "trout",
    "salmon",
    "shark",
    "whale",
    "dolphin",
    "seal",
    "otter",
    "beaver",
    "hedgehog",
    "badger",
    "lion",
    "tiger",
    "leopard",
    "cheetah",
    "elephant",
    "giraffe",
    "zebra",
    "rhino",
    "hippo",
    "monkey",
    "gorilla",
    "kangaroo",
    "koala",
    "panda",
    "camel",
    "llama",
    "child",
    "girl",
    "boy",
    "woman",
    "man",
    "old man",
    "old woman",
    "family",
    "couple",
    "crowd",
    "farmer",
    "fisherman",
    "sailor",
    "soldier",
    "knight",
    "king",
    "queen",
    "princess",
    "prince",
    "wizard",
    "witch",
    "robot",
    "astronaut",
    "pilot",
    "driver",
    "cyclist",
    "runner",
    "swimmer",
    "dancer",
    "singer",
    "musician",
    "painter",
    "chef",
    "baker",
    "teacher",
    "doctor",
    "nurse",
    "firefighter",
    "police officer",
    "car",
    "truck",
    "bus",
    "train",
    "tram",
    "bicycle",
    "motorbike",
    "boat",
    "ship",
    "sailboat",
    "canoe",
    "kayak",
    "airplane",
    "helicopter",
    "balloon",
    "kite",
    "rocket",
    "tractor",
    "house",
    "cottage",
    "castle",
    "tower",
    "lighthouse",
    "bridge",
    "windmill",
    "barn",
    "church",
    "temple",
    "tent",
    "fountain",
    "statue",
    "tree",
    "oak",
    "pine",
    "palm tree",
    "willow",
    "flower",
    "rose",
    "tulip",
    "sunflower",
    "daisy",
    "dandelion",
    "mushroom",
    "cactus",
    "leaf",
    "rock",
    "waterfall",
    "river",
    "stream",
    "lake",
    "pond",
    "wave",
    "cloud",
    "storm",
    "rainbow",
    "moon",
    "star",
    "sun",
    "fire",
    "candle",
    "lantern",
    "clock",
    "book",
    "cup",
    "bottle",
    "drum",
    "guitar",
];

const ACTIONS: &[&str] = &[
    "standing",
    "sitting",
    "lying",
    "walking",
    "running",
    "jumping",
    "flying",
    "swimming",
    "sleeping",
    "resting",
    "waiting",
    "playing",
    "drifting",
    "floating",
    "glowing",
    "shining",
    "moving slowly",
    "turning",
    "climbing",
    "falling",
    "dancing",
    "hiding",
    "looking around",
    "watching the sky",
    "crossing",
];

const PLACES: &[&str] = &[
    "in a forest",
    "in a pine forest",
    "in a meadow",
    "in a field of wheat",
    "in a garden",
    "in a park",
    "on a beach",
    "on a sandy shore",
    "by the sea",
    "on the ocean",
    "by a lake",
    "on a river",
    "beside a stream",
    "near a waterfall",
    "in the mountains",
    "on a snowy peak",
    "on a hill",
    "in a valley",
    "in a canyon",
    "in a desert",
    "on a dune",
    "in the jungle",
    "in a swamp",
    "on an island",
    "on a cliff",
    "in a cave",
    "in a city",
    "on a busy street",
    "in a market",
    "in a square",
    "in a village",
    "on a farm",
    "in a barn",
    "in a kitchen",
    "in a living room",
    "in a bedroom",
    "in a library",
    "in a classroom",
    "in a museum",
    "in a church",
    "in a castle",
    "on a bridge",
    "at a harbour",
    "at a train station",
    "at an airport",
    "on a road",
    "on a highway",
    "in a tunnel",
    "on a rooftop",
    "in a stadium",
    "in a theatre",
    "under the stars",
    "in the sky",
    "above the clouds",
    "under water",
    "on the ice",
    "in the snow",
    "in the rain",
    "in a storm",
    "in space",
];

const TIMES: &[&str] = &[
    "at sunrise",
    "in the morning",
    "at noon",
    "in the afternoon",
    "at sunset",
    "at dusk",
    "at night",
    "at midnight",
    "in spring",
    "in summer",
    "in autumn",
    "in winter",
    "on a foggy day",
    "on a clear day",
    "under a grey sky",
];

/// One synthetic clip: caption and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticClip {
    pub clip_id: String,
    pub caption: String,
    pub tags: Vec<String>,
    /// The vocabulary entries the caption was built from (adjective, subject, action,
    /// place, time), for [`crate::synthetic_embeddings`].
    pub parts: [&'static str; 5],
}

/// Every entry of the caption vocabularies, once each (an entry may serve two roles).
pub fn vocabulary() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = [ADJECTIVES, SUBJECTS, ACTIONS, PLACES, TIMES].concat();
    all.sort_unstable();
    all.dedup();
    all
}

/// An endless, seeded stream of synthetic clips (`syn-0000000`, `syn-0000001` ...).
pub struct CaptionGenerator {
    rng: ChaCha8Rng,
    next: u64,
}

impl CaptionGenerator {
    pub fn new(seed: u64) -> Self {
        CaptionGenerator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            next: 0,
        }
    }

    fn pick<'a>(&mut self, words: &[&'a str]) -> &'a str {
        words[self.rng.random_range(0..words.len())]
    }
}

impl Iterator for CaptionGenerator {
    type Item = SyntheticClip;

    fn next(&mut self) -> Option<SyntheticClip> {
        let adjective = self.pick(ADJECTIVES);
        let subject = self.pick(SUBJECTS);
        let action = self.pick(ACTIONS);
        let place = self.pick(PLACES);
        let time = self.pick(TIMES);
        let article = if adjective.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        let caption = format!("{article} {adjective} {subject} {action} {place}, {time}");
        let place_word = place.rsplit(' ').next().unwrap_or(place);
        let tags = vec![subject.to_string(), place_word.to_string(), adjective.to_string()];
        let clip_id = format!("syn-{:07}", self.next);
        self.next += 1;
        Some(SyntheticClip {
            clip_id,
            caption,
            tags,
            parts: [adjective, subject, action, place, time],
        })
    }
}

/// A deterministic random unit vector standing in for a caption embedding: the re-rank
/// costs the same whatever the values, and for a nearest-neighbour graph structureless
/// points are the worst case (caption-like vectors: [`crate::synthetic_embeddings`]).
pub fn pseudo_embedding(rng: &mut ChaCha8Rng, dim: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Keywords a prompt-rewriter could produce for a synthetic query: a subject and a place.
pub fn query_keywords(rng: &mut ChaCha8Rng) -> Vec<String> {
    let subject = SUBJECTS[rng.random_range(0..SUBJECTS.len())];
    let place = PLACES[rng.random_range(0..PLACES.len())];
    let adjective = ADJECTIVES[rng.random_range(0..ADJECTIVES.len())];
    vec![
        adjective.to_string(),
        subject.to_string(),
        place.rsplit(' ').next().unwrap_or(place).to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_varied() {
        let a: Vec<_> = CaptionGenerator::new(7).take(1000).collect();
        let b: Vec<_> = CaptionGenerator::new(7).take(1000).collect();
        assert_eq!(a, b);
        assert_eq!(a[3].clip_id, "syn-0000003");
        let distinct: std::collections::HashSet<_> = a.iter().map(|c| &c.caption).collect();
        assert!(
            distinct.len() > 990,
            "{} distinct captions of 1000",
            distinct.len()
        );
        assert!(
            a.iter()
                .all(|c| c.tags.len() == 3 && c.caption.contains(&c.tags[0]))
        );
    }

    #[test]
    fn pseudo_embeddings_are_unit_vectors() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let v = pseudo_embedding(&mut rng, 384);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
}
