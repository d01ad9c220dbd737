//! The ncnn release's weights under basicsr's names: the weighted layers of the ncnn graph
//! come in the order of the PyTorch module tree, so each gets the next name of the model's
//! list. The result is checked by loading it strictly.

use std::path::Path;

use tch::{Device, Tensor, nn::VarStore};

use super::{
    RealEsrgan, RealEsrganModel,
    ncnn::{LayerWeights, NcnnError, parse_param, read_weights},
    rrdb::RrdbConfig,
    srvgg::SrVggConfig,
};
use crate::weights::{WeightsError, load_strict};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Ncnn(#[from] NcnnError),
    #[error("{0}")]
    Layout(String),
    #[error("the converted weights do not load: {0}")]
    Weights(#[from] WeightsError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// basicsr's module path of each weighted layer, in graph order.
fn layer_paths(model: RealEsrganModel) -> Vec<String> {
    match model {
        RealEsrganModel::AnimeVideoV3X2 | RealEsrganModel::AnimeVideoV3X4 => {
            let convs = SrVggConfig::ANIMEVIDEO_V3.num_conv;
            // conv, prelu, (conv, prelu) * num_conv, conv
            (0..=2 + 2 * convs).map(|i| format!("body.{i}")).collect()
        }
        RealEsrganModel::X4Plus => {
            let mut paths = vec!["conv_first".to_owned()];
            for b in 0..RrdbConfig::X4PLUS.num_block {
                for r in 1..=3 {
                    for c in 1..=5 {
                        paths.push(format!("body.{b}.rdb{r}.conv{c}"));
                    }
                }
            }
            paths.extend(["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"].map(String::from));
            paths
        }
    }
}

/// Converts `param` + `bin` of `model` into `out` (f32 safetensors, basicsr names);
/// returns the number of tensors written.
pub fn convert_ncnn(
    param: &Path,
    bin: &Path,
    model: RealEsrganModel,
    out: &Path,
) -> Result<usize, ConvertError> {
    let layers = parse_param(param)?;
    let weights = read_weights(&layers, bin)?;
    let paths = layer_paths(model);
    if weights.len() != paths.len() {
        return Err(ConvertError::Layout(format!(
            "{} has {} weighted layers, {model:?} has {}",
            param.display(),
            weights.len(),
            paths.len()
        )));
    }
    let tensor = |blob: &super::ncnn::Blob| Tensor::from_slice(&blob.values).reshape(&blob.shape);
    let mut tensors = Vec::new();
    for ((layer, w), path) in weights.iter().zip(&paths) {
        match w {
            LayerWeights::Conv { weight, bias } => {
                tensors.push((format!("{path}.weight"), tensor(weight)));
                let bias = bias.as_ref().ok_or_else(|| {
                    ConvertError::Layout(format!("convolution {layer} ({path}) has no bias"))
                })?;
                tensors.push((format!("{path}.bias"), tensor(bias)));
            }
            LayerWeights::PRelu { slope } => tensors.push((format!("{path}.weight"), tensor(slope))),
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ConvertError::Layout(format!("creating {}: {e}", dir.display())))?;
    }
    Tensor::write_safetensors(&tensors, out)?;
    let mut vs = VarStore::new(Device::Cpu);
    RealEsrgan::declare(&vs.root(), model);
    load_strict(&mut vs, &[out])?;
    Ok(tensors.len())
}
