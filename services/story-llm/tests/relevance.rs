//! The scorer's relevance term with the real all-MiniLM-L6-v2 weights (`make models` puts
//! them in `${STORYREEL_CACHE}/models/all-minilm-l6-v2`).

use storyreel_story_llm::{StoryLlmConfig, relevance::TitleRelevance};

fn encoder() -> TitleRelevance {
    let dir = StoryLlmConfig::default().relevance_encoder_dir;
    assert!(
        dir.join("modules.json").is_file(),
        "all-MiniLM-L6-v2 is missing from {}: run `make models`",
        dir.display()
    );
    TitleRelevance::load(&dir).expect("the encoder loads")
}

#[tokio::test]
async fn a_scene_about_the_title_is_closer_than_one_about_anything() {
    let cosines = encoder()
        .cosines(
            "The First Moon Landing",
            vec![
                "Two astronauts stepped onto the grey lunar dust.".into(),
                "It was a wonderful day for everyone.".into(),
                "The baker pulled fresh bread from the oven.".into(),
            ],
        )
        .await
        .expect("the encoder runs");
    assert_eq!(cosines.len(), 3);
    for c in &cosines {
        assert!((-1.0..=1.0).contains(c), "a cosine: {c}");
    }
    assert!(cosines[0] > cosines[1] && cosines[0] > cosines[2], "{cosines:?}");
    let none = encoder().cosines("Anything", vec![]).await;
    assert_eq!(none, Some(vec![]));
}

#[test]
fn a_missing_encoder_names_the_field_and_the_way_out() {
    let err = match TitleRelevance::load(std::path::Path::new("/nonexistent/encoder")) {
        Ok(_) => panic!("a missing directory loads"),
        Err(err) => err,
    };
    let message = err.to_string();
    assert!(message.contains("relevance_encoder_dir"), "{message}");
    assert!(message.contains("\"\""), "{message}");
}
