//! The tiny random-initialised keyframe model that `make models` writes for the embedded
//! default: no public diffusion weights are available from the package registries
//! (DESIGN.md §3). It is seeded and in the exact diffusers layout of an
//! `AnimateDiffPipeline` directory, so the code paths are those of SD 1.5 + AnimateDiff:
//!
//! ```text
//! model_index.json
//! unet/{config.json, diffusion_pytorch_model.safetensors}            UNet2DConditionModel
//! motion_adapter/{config.json, diffusion_pytorch_model.safetensors}  MotionAdapter
//! vae/{config.json, diffusion_pytorch_model.safetensors}             AutoencoderKL (8x)
//! text_encoder/{config.json, model.safetensors}                       CLIPTextModel
//! tokenizer/{tokenizer.json, tokenizer_config.json}                   CLIP BPE
//! scheduler/scheduler_config.json                                     DDIMScheduler
//! ```
//!
//! Its outputs are noise-like: it exercises the pipeline, it does not draw. The tokenizer
//! is the 675-token CLIP byte-level BPE of the clip_text parity fixture (any text
//! tokenises, into short pieces). Weights: N(0, 1/fan_in) matrices, norm scales
//! 1 + N(0, 0.1), biases N(0, 0.1), the motion modules' sinusoidal tables exact.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tch::{Device, Kind, Tensor, nn};

use super::{
    AttentionNaming, DiffusionError,
    embeddings::sinusoidal_position_table,
    motion::{MotionAdapterConfig, MotionLayout},
    pipeline::gaussian_noise,
    unet::{UNet, UNet2DConditionConfig},
    vae::{AutoencoderKL, AutoencoderKLConfig},
};
use crate::clip_text::{ClipLayout, ClipTextConfig, ClipTextModel};

const TOKENIZER_JSON: &str = include_str!("../../tests/fixtures/clip_text/tokenizer.json");
const DIFFUSERS_VERSION: &str = "0.42.1";

pub(crate) fn unet_config() -> Value {
    json!({
        "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu", "attention_head_dim": 4, "block_out_channels": [32, 64],
        "center_input_sample": false, "cross_attention_dim": 64,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "downsample_padding": 1,
        "flip_sin_to_cos": true, "freq_shift": 0, "in_channels": 4, "layers_per_block": 2,
        "mid_block_scale_factor": 1, "norm_eps": 1e-05, "norm_num_groups": 8, "out_channels": 4,
        "sample_size": 64, "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]
    })
}

pub(crate) fn adapter_config() -> Value {
    json!({
        "_class_name": "MotionAdapter", "_diffusers_version": DIFFUSERS_VERSION,
        "block_out_channels": [32, 64], "conv_in_channels": null, "motion_layers_per_block": 2,
        "motion_max_seq_length": 32, "motion_mid_block_layers_per_block": 1,
        "motion_norm_num_groups": 8, "motion_num_attention_heads": 4,
        "motion_transformer_layers_per_block": 1, "motion_transformer_layers_per_mid_block": 1,
        "use_motion_mid_block": true
    })
}

fn vae_config() -> Value {
    json!({
        "_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu", "block_out_channels": [16, 32, 32, 32],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "in_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 8,
        "out_channels": 3, "sample_size": 512, "scaling_factor": 0.18215,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
    })
}

pub(crate) fn text_encoder_config(vocabulary: &Vocabulary) -> Value {
    let mut config = fixture_text_encoder_config();
    config["vocab_size"] = json!(vocabulary.size);
    config["bos_token_id"] = json!(vocabulary.bos);
    config["eos_token_id"] = json!(vocabulary.eos);
    config["pad_token_id"] = json!(vocabulary.pad);
    config
}

fn fixture_text_encoder_config() -> Value {
    json!({
        "architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 672,
        "dropout": 0.0, "eos_token_id": 673, "hidden_act": "quick_gelu", "hidden_size": 64,
        "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 128,
        "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
        "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 674,
        "projection_dim": 64, "vocab_size": 675
    })
}

fn tokenizer_config() -> Value {
    json!({
        "backend": "tokenizers", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "model_max_length": 77, "pad_token": "<|pad|>", "tokenizer_class": "CLIPTokenizer",
        "unk_token": "<|endoftext|>"
    })
}

pub(crate) fn scheduler_config() -> Value {
    // AnimateDiff's DDIM settings.
    json!({
        "_class_name": "DDIMScheduler", "_diffusers_version": DIFFUSERS_VERSION,
        "beta_end": 0.012, "beta_schedule": "linear", "beta_start": 0.00085, "clip_sample": false,
        "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": true,
        "steps_offset": 1, "timestep_spacing": "linspace"
    })
}

fn model_index() -> Value {
    json!({
        "_class_name": "AnimateDiffPipeline", "_diffusers_version": DIFFUSERS_VERSION,
        "feature_extractor": [null, null], "image_encoder": [null, null],
        "motion_adapter": ["diffusers", "MotionAdapter"], "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]
    })
}

/// Overwrites every variable of `vs` with seeded values (see the module docs), in name
/// order; `fixed` gives the exact value of named buffers.
pub(crate) fn randomise(vs: &nn::VarStore, seed: u64, fixed: impl Fn(&str, &Tensor) -> Option<Tensor>) {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    tch::no_grad(|| {
        for (i, (name, mut var)) in vars.into_iter().enumerate() {
            let value = fixed(&name, &var).unwrap_or_else(|| {
                let shape = var.size();
                let noise = gaussian_noise(
                    seed.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64),
                    &shape,
                    Device::Cpu,
                );
                if shape.len() >= 2 {
                    let fan_in: i64 = shape[1..].iter().product();
                    noise / (fan_in as f64).sqrt()
                } else if name.contains("norm") && name.ends_with("weight") {
                    noise * 0.1 + 1.0
                } else {
                    noise * 0.1
                }
            });
            var.copy_(&value.to_kind(var.kind()));
        }
    });
}

/// A motion UNet (base UNet + motion modules) with seeded random weights, the positional
/// tables sinusoidal as a checkpoint holds them; the tiny keyframe and interpolation models
/// both start from one.
pub(crate) fn random_motion_unet(
    unet_cfg: &UNet2DConditionConfig,
    adapter_cfg: &MotionAdapterConfig,
    seed: u64,
) -> Result<nn::VarStore, DiffusionError> {
    let layout = MotionLayout {
        max_seq_length: adapter_cfg.motion_max_seq_length,
        pe_in_checkpoint: true,
    };
    let vs = nn::VarStore::new(Device::Cpu);
    UNet::new_motion(
        &vs.root(),
        unet_cfg,
        adapter_cfg,
        AttentionNaming::Current,
        layout,
    )?;
    randomise(&vs, seed, |name, var| {
        name.ends_with(".pos_embed.pe").then(|| {
            let s = var.size();
            sinusoidal_position_table(s[2], s[1], Device::Cpu)
        })
    });
    Ok(vs)
}

pub(crate) fn write_json(path: &Path, value: &Value) -> Result<(), DiffusionError> {
    let text = serde_json::to_string_pretty(value).expect("json values serialise") + "\n";
    std::fs::write(path, text).map_err(|source| DiffusionError::Io {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn write_tensors(path: &Path, tensors: Vec<(String, Tensor)>) -> Result<(), DiffusionError> {
    Tensor::write_safetensors(&tensors, path)?;
    Ok(())
}

pub(crate) fn sorted(vs: &nn::VarStore, keep: impl Fn(&str) -> bool) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(n, _)| keep(n)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

pub(crate) fn parse<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).expect("the built-in configs parse")
}

/// `out/name`, created with its parents.
pub(crate) fn create_dir(out: &Path, name: &str) -> Result<PathBuf, DiffusionError> {
    let d = out.join(name);
    std::fs::create_dir_all(&d).map_err(|source| DiffusionError::Io {
        path: d.clone(),
        source,
    })?;
    Ok(d)
}

/// Writes a motion UNet as the two directories users hold: `unet/` (the image UNet) and
/// `motion_adapter/` (the `.motion_modules.` tensors), each with its config; returns the
/// four files.
pub(crate) fn write_motion_unet_split(
    vs: &nn::VarStore,
    out: &Path,
    unet_json: &Value,
    adapter_json: &Value,
) -> Result<Vec<PathBuf>, DiffusionError> {
    let motion = |n: &str| n.contains(".motion_modules.");
    let mut files = Vec::new();
    for (name, config, keep) in [
        (
            "unet",
            unet_json,
            &(|n: &str| !motion(n)) as &dyn Fn(&str) -> bool,
        ),
        ("motion_adapter", adapter_json, &motion),
    ] {
        let d = create_dir(out, name)?;
        write_json(&d.join("config.json"), config)?;
        write_tensors(&d.join("diffusion_pytorch_model.safetensors"), sorted(vs, keep))?;
        files.extend([
            d.join("config.json"),
            d.join("diffusion_pytorch_model.safetensors"),
        ]);
    }
    Ok(files)
}

/// The tokenizer the tiny model's text encoder is sized for.
pub(crate) struct Vocabulary {
    tokenizer_json: String,
    tokenizer_config: Value,
    size: i64,
    bos: i64,
    eos: i64,
    pad: i64,
}

impl Vocabulary {
    /// The 675-token parity-fixture BPE.
    pub(crate) fn fixture() -> Self {
        let config = fixture_text_encoder_config();
        let id = |key: &str| config[key].as_i64().expect("an id");
        Vocabulary {
            tokenizer_json: TOKENIZER_JSON.to_string(),
            tokenizer_config: tokenizer_config(),
            size: id("vocab_size"),
            bos: id("bos_token_id"),
            eos: id("eos_token_id"),
            pad: id("pad_token_id"),
        }
    }

    /// A CLIP tokenizer directory (`tokenizer.json`, `tokenizer_config.json`): the text
    /// encoder gets its vocabulary size and special-token ids.
    pub(crate) fn from_dir(dir: &Path) -> Result<Self, DiffusionError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| DiffusionError::Io { path, source })
        };
        let (tokenizer_json, config_json) = (read("tokenizer.json")?, read("tokenizer_config.json")?);
        let bad = |what: String| DiffusionError::config("tokenizer", format!("in {}: {what}", dir.display()));
        let tokenizer: Value = serde_json::from_str(&tokenizer_json).map_err(|e| bad(e.to_string()))?;
        let tokenizer_config: Value = serde_json::from_str(&config_json).map_err(|e| bad(e.to_string()))?;
        let mut ids: Vec<(String, i64)> = tokenizer["model"]["vocab"]
            .as_object()
            .ok_or_else(|| bad("no model.vocab".into()))?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_i64()?)))
            .collect();
        for added in tokenizer["added_tokens"].as_array().into_iter().flatten() {
            if let (Some(content), Some(id)) = (added["content"].as_str(), added["id"].as_i64()) {
                ids.push((content.to_string(), id));
            }
        }
        let id_of = |key: &str| -> Result<i64, DiffusionError> {
            let token = tokenizer_config[key]
                .as_str()
                .ok_or_else(|| bad(format!("no {key} in tokenizer_config.json")))?;
            ids.iter()
                .find(|(t, _)| t == token)
                .map(|(_, id)| *id)
                .ok_or_else(|| bad(format!("{key} `{token}` is not in the vocabulary")))
        };
        Ok(Vocabulary {
            size: ids.iter().map(|(_, id)| id + 1).max().unwrap_or(0),
            bos: id_of("bos_token")?,
            eos: id_of("eos_token")?,
            pad: id_of("pad_token")?,
            tokenizer_json,
            tokenizer_config,
        })
    }
}

/// Writes the tiny keyframe model into `out` (created), seeded by `seed`, with the
/// 675-token fixture tokenizer; returns the files written.
pub fn write_tiny_keyframe_model(out: &Path, seed: u64) -> Result<Vec<PathBuf>, DiffusionError> {
    write_tiny_model(out, seed, Vocabulary::fixture())
}

/// [`write_tiny_keyframe_model`] with the CLIP tokenizer in `tokenizer_dir` (the one SD
/// 1.5 uses, as `make models` writes it): prompts are then counted, and budgeted by the
/// prompt rewriter, exactly as for real weights; the text encoder's embedding table has
/// that tokenizer's size.
pub fn write_tiny_keyframe_model_with_tokenizer(
    out: &Path,
    seed: u64,
    tokenizer_dir: &Path,
) -> Result<Vec<PathBuf>, DiffusionError> {
    write_tiny_model(out, seed, Vocabulary::from_dir(tokenizer_dir)?)
}

fn write_tiny_model(out: &Path, seed: u64, vocabulary: Vocabulary) -> Result<Vec<PathBuf>, DiffusionError> {
    let dir = |name: &str| create_dir(out, name);

    // UNet + motion adapter: one motion UNet, split into the two files users hold.
    let (unet_json, adapter_json) = (unet_config(), adapter_config());
    let unet_cfg: UNet2DConditionConfig = parse(&unet_json);
    let adapter_cfg: MotionAdapterConfig = parse(&adapter_json);
    let vs = random_motion_unet(&unet_cfg, &adapter_cfg, seed)?;
    let mut files = write_motion_unet_split(&vs, out, &unet_json, &adapter_json)?;

    let vae_json = vae_config();
    let vs = nn::VarStore::new(Device::Cpu);
    AutoencoderKL::new(
        &vs.root(),
        &parse::<AutoencoderKLConfig>(&vae_json),
        AttentionNaming::Current,
    )?;
    randomise(&vs, seed.wrapping_add(1), |_, _| None);
    let d = dir("vae")?;
    write_json(&d.join("config.json"), &vae_json)?;
    write_tensors(
        &d.join("diffusion_pytorch_model.safetensors"),
        sorted(&vs, |_| true),
    )?;
    files.extend([
        d.join("config.json"),
        d.join("diffusion_pytorch_model.safetensors"),
    ]);

    files.extend(write_text_encoder(
        out,
        seed.wrapping_add(2),
        &vocabulary,
        text_encoder_config(&vocabulary),
    )?);

    let d = dir("scheduler")?;
    write_json(&d.join("scheduler_config.json"), &scheduler_config())?;
    files.push(d.join("scheduler_config.json"));
    write_json(&out.join("model_index.json"), &model_index())?;
    files.push(out.join("model_index.json"));
    Ok(files)
}

/// Writes `text_encoder/` (CLIP text in the published layout: `text_model.` prefix,
/// `position_ids`) with seeded weights and `text_json` as its config, and `tokenizer/`
/// (the vocabulary's files); returns the files written.
pub(crate) fn write_text_encoder(
    out: &Path,
    seed: u64,
    vocabulary: &Vocabulary,
    text_json: Value,
) -> Result<Vec<PathBuf>, DiffusionError> {
    let dir = |name: &str| create_dir(out, name);
    let text_cfg: ClipTextConfig = parse(&text_json);
    let vs = nn::VarStore::new(Device::Cpu);
    let layout = ClipLayout {
        prefix: Some("text_model".into()),
        position_ids: true,
    };
    ClipTextModel::new(&(vs.root() / "text_model"), &text_cfg, &layout);
    randomise(&vs, seed, |name, var| {
        name.ends_with("position_ids")
            .then(|| Tensor::arange(var.size()[1], (Kind::Int64, Device::Cpu)).unsqueeze(0))
    });
    let d = dir("text_encoder")?;
    write_json(&d.join("config.json"), &text_json)?;
    write_tensors(&d.join("model.safetensors"), sorted(&vs, |_| true))?;
    let mut files = vec![d.join("config.json"), d.join("model.safetensors")];

    let d = dir("tokenizer")?;
    let tokenizer = d.join("tokenizer.json");
    std::fs::write(&tokenizer, &vocabulary.tokenizer_json).map_err(|source| DiffusionError::Io {
        path: tokenizer.clone(),
        source,
    })?;
    write_json(&d.join("tokenizer_config.json"), &vocabulary.tokenizer_config)?;
    files.extend([tokenizer, d.join("tokenizer_config.json")]);
    Ok(files)
}
