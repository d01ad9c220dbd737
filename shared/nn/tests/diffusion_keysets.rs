//! Real checkpoints load unchanged: the SD 1.5 UNet, VAE and CLIP text encoder, the SD 2.1
//! UNet and the AnimateDiff v1.5 / v1.5-2 motion adapters, instantiated by diffusers and
//! transformers from their published configs, have exactly the names and shapes our
//! models declare from the same configs.
//!
//! Fixtures: `tests/fixtures/diffusion/keysets/NAME.{json,txt}`, written by
//! `scripts/fixtures/diffusion.py` (torch 2.13.0, diffusers 0.42.1, transformers 5.23.0):
//! the published config (written into the script by hand) and the sorted `name shape`
//! lines of the state dict. Our side is built with one byte per element
//! ([`storyreel_nn::weights::declared_shapes`]), so the check costs < 1.5 GB briefly.

mod diffusion_fixtures;

use std::collections::BTreeMap;

use diffusion_fixtures::dir;
use storyreel_nn::{
    clip_text::{ClipLayout, ClipTextConfig, ClipTextModel},
    diffusion::{
        AttentionNaming,
        motion::{MotionAdapterConfig, MotionLayout},
        unet::{UNet, UNet2DConditionConfig},
        vae::{AutoencoderKL, AutoencoderKLConfig},
    },
    weights::declared_shapes,
};

type Shapes = BTreeMap<String, Vec<i64>>;

fn published(name: &str) -> Shapes {
    let text = std::fs::read_to_string(dir("keysets").join(format!("{name}.txt"))).unwrap();
    text.lines()
        .map(|line| {
            let (key, shape) = line.split_once(' ').unwrap();
            let shape = if shape.is_empty() {
                Vec::new()
            } else {
                shape.split(',').map(|d| d.parse().unwrap()).collect()
            };
            (key.to_string(), shape)
        })
        .collect()
}

fn config_text(name: &str) -> String {
    std::fs::read_to_string(dir("keysets").join(format!("{name}.json"))).unwrap()
}

/// Asserts equal key sets and shapes, listing the differences.
fn assert_same(what: &str, ours: &Shapes, theirs: &Shapes) {
    let missing: Vec<&String> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let shapes: Vec<String> = ours
        .iter()
        .filter_map(|(k, s)| {
            theirs
                .get(k)
                .filter(|t| *t != s)
                .map(|t| format!("{k}: ours {s:?}, theirs {t:?}"))
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && shapes.is_empty(),
        "{what}: not declared by us {missing:?}; declared but not in the checkpoint {extra:?}; shapes {shapes:?}"
    );
    eprintln!("{what}: {} tensors, names and shapes equal", ours.len());
}

fn unet_config(name: &str) -> UNet2DConditionConfig {
    serde_json::from_str(&config_text(name)).unwrap()
}

#[test]
fn sd15_and_sd21_unets_declare_the_published_keys() {
    for name in ["sd15_unet", "sd21_unet"] {
        let config = unet_config(name);
        let ours = declared_shapes(|p| {
            UNet::new_2d(p, &config, AttentionNaming::Current).unwrap();
        });
        assert_same(name, &ours, &published(name));
    }
}

#[test]
fn sd15_unet_with_animatediff_adapters_declares_both_files_keys() {
    let config = unet_config("sd15_unet");
    let unet = published("sd15_unet");
    for name in ["animatediff_v1_5_adapter", "animatediff_v1_5_2_adapter"] {
        let adapter_config: MotionAdapterConfig = serde_json::from_str(&config_text(name)).unwrap();
        let adapter = published(name);
        let layout = MotionLayout::from_names(&adapter_config, adapter.keys().map(String::as_str));
        assert!(layout.pe_in_checkpoint);
        let ours = declared_shapes(|p| {
            UNet::new_motion(p, &config, &adapter_config, AttentionNaming::Current, layout).unwrap();
        });
        // The base UNet file and the adapter file hold disjoint halves of our names.
        let mut both = unet.clone();
        for (k, s) in &adapter {
            assert!(both.insert(k.clone(), s.clone()).is_none(), "{k} in both files");
        }
        assert_same(&format!("sd15_unet + {name}"), &ours, &both);
    }
}

#[test]
fn sd15_vae_declares_the_published_keys() {
    let config: AutoencoderKLConfig = serde_json::from_str(&config_text("sd15_vae")).unwrap();
    let ours = declared_shapes(|p| {
        AutoencoderKL::new(p, &config, AttentionNaming::Current).unwrap();
    });
    assert_same("sd15_vae", &ours, &published("sd15_vae"));
}

#[test]
fn sd15_text_encoder_declares_the_published_keys_in_both_layouts() {
    let config: ClipTextConfig = serde_json::from_str(&config_text("sd15_text_encoder")).unwrap();
    let theirs = published("sd15_text_encoder");
    // transformers 5's own layout (what the script instantiates) ...
    let ours = declared_shapes(|p| {
        ClipTextModel::new(p, &config, &ClipLayout::default());
    });
    assert_same("sd15_text_encoder (transformers 5 layout)", &ours, &theirs);
    // ... and the published file's: `text_model.` prefix and the position_ids buffer.
    let mut file: Shapes = theirs
        .iter()
        .map(|(k, s)| (format!("text_model.{k}"), s.clone()))
        .collect();
    file.insert("text_model.embeddings.position_ids".into(), vec![1, 77]);
    let layout = ClipLayout::from_names(file.keys().map(String::as_str));
    let ours = declared_shapes(|p| {
        ClipTextModel::new(&(p / "text_model"), &config, &layout);
    });
    assert_same("sd15_text_encoder (published layout)", &ours, &file);
}
