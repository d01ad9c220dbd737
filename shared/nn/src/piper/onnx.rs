//! Reads a Piper ONNX export and rebuilds the PyTorch state dict from its initialisers
//! (DESIGN.md §9). Most initialisers keep their PyTorch names; the rest are named by the
//! node that consumes them, whose name carries the module path:
//!
//! - weight-norm was folded at export, leaving anonymous conv weights (`onnx::Conv_8168`
//!   feeds input 1 of `/flow/flows.6/enc/in_layers.0/Conv`: `flow.flows.6.enc.in_layers.0.weight`);
//! - the text embedding appears as `sid` (it feeds `/enc_p/emb/Gather`: `enc_p.emb.weight`);
//! - the duration predictor's ElementwiseAffine `logs` was constant-folded into
//!   `exp(-logs)` (`/dp/flows.0/Exp_output_0`): `dp.flows.0.logs = -ln(value)`.
//!
//! Initialisers that are graph constants (shapes, axes, scalars) are not weights and are
//! left out. The result is checked against the model built from the inferred config:
//! every key present, none extra, every shape equal.
//!
//! The protobuf messages are the subset of `onnx.proto` that is read, with its field numbers.

use super::{PiperError, Vits, VitsConfig};
use prost::Message;
use std::{collections::BTreeMap, path::Path};
use tch::{Kind, Tensor};

#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
}

#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;

/// The state dict of a Piper ONNX file, and the config it implies.
pub struct Converted {
    pub tensors: BTreeMap<String, Tensor>,
    pub config: VitsConfig,
    /// Initialisers that were graph constants, not weights.
    pub skipped: usize,
}

fn values(t: &TensorProto) -> Result<Vec<f32>, PiperError> {
    if !t.raw_data.is_empty() {
        if !t.raw_data.len().is_multiple_of(4) {
            return Err(PiperError::Convert(format!(
                "initialiser `{}`: raw data of {} bytes",
                t.name,
                t.raw_data.len()
            )));
        }
        Ok(t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    } else {
        Ok(t.float_data.clone())
    }
}

/// `/flow/flows.6/enc/in_layers.0/Conv` -> `flow.flows.6.enc.in_layers.0`.
fn module_of(node: &str) -> Option<String> {
    let path = node.strip_prefix('/')?;
    let (module, _op) = path.rsplit_once('/')?;
    Some(module.replace('/', "."))
}

/// The PyTorch name of initialiser `name`, given its consumers (node name, op, input
/// index), and whether its value is `exp(-logs)`.
fn pytorch_name(name: &str, consumers: &[(&str, &str, usize)]) -> Option<(String, bool)> {
    const MODULES: [&str; 4] = ["enc_p.", "dp.", "flow.", "dec."];
    if MODULES.iter().any(|m| name.starts_with(m)) {
        return Some((name.to_string(), false));
    }
    if let Some(module) = name
        .strip_suffix("/Exp_output_0")
        .and_then(|n| n.strip_prefix('/'))
    {
        return Some((format!("{}.logs", module.replace('/', ".")), true));
    }
    let &(node, op, index) = consumers.first()?;
    match (op, index) {
        ("Conv" | "ConvTranspose", 1) => Some((format!("{}.weight", module_of(node)?), false)),
        ("Conv" | "ConvTranspose", 2) => Some((format!("{}.bias", module_of(node)?), false)),
        ("Gather", 0) if node.ends_with("/emb/Gather") => {
            Some((format!("{}.weight", module_of(node)?), false))
        }
        _ => None,
    }
}

/// Reads `path` and rebuilds the state dict (see the module docs).
pub fn convert_onnx(path: &Path) -> Result<Converted, PiperError> {
    let bytes = std::fs::read(path).map_err(|source| PiperError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| PiperError::Convert(format!("{} is not an ONNX model: {e}", path.display())))?;
    let graph = model
        .graph
        .ok_or_else(|| PiperError::Convert(format!("{} has no graph", path.display())))?;
    let mut consumers: BTreeMap<&str, Vec<(&str, &str, usize)>> = BTreeMap::new();
    for node in &graph.node {
        for (i, input) in node.input.iter().enumerate() {
            consumers
                .entry(input.as_str())
                .or_default()
                .push((&node.name, &node.op_type, i));
        }
    }
    let mut tensors = BTreeMap::new();
    let mut skipped = 0;
    for init in &graph.initializer {
        let used_by = consumers
            .get(init.name.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let Some((name, neg_log)) = (init.data_type == FLOAT && !init.dims.is_empty())
            .then(|| pytorch_name(&init.name, used_by))
            .flatten()
        else {
            skipped += 1;
            continue;
        };
        let mut tensor = Tensor::from_slice(&values(init)?).view(init.dims.as_slice());
        if neg_log {
            tensor = -tensor.to_kind(Kind::Double).log().to_kind(Kind::Float);
        }
        if tensors.insert(name.clone(), tensor).is_some() {
            return Err(PiperError::Convert(format!("two initialisers map to `{name}`")));
        }
    }
    let config = infer_config(&tensors)?;
    check_against_model(&tensors, &config)?;
    Ok(Converted {
        tensors,
        config,
        skipped,
    })
}

fn shape(tensors: &BTreeMap<String, Tensor>, name: &str) -> Result<Vec<i64>, PiperError> {
    tensors
        .get(name)
        .map(Tensor::size)
        .ok_or_else(|| PiperError::Convert(format!("the export has no `{name}`")))
}

fn count(tensors: &BTreeMap<String, Tensor>, prefix: &str, suffix: &str) -> i64 {
    (0..)
        .take_while(|i| tensors.contains_key(&format!("{prefix}{i}{suffix}")))
        .count() as i64
}

/// The sizes the weights show, on piper's `medium` defaults for what they do not show
/// (dilations, spline bins); [`check_against_model`] then holds them to every shape.
fn infer_config(t: &BTreeMap<String, Tensor>) -> Result<VitsConfig, PiperError> {
    let mut c = VitsConfig::piper_medium();
    let emb = shape(t, "enc_p.emb.weight")?;
    (c.n_vocab, c.hidden_channels) = (emb[0], emb[1]);
    c.inter_channels = shape(t, "enc_p.proj.weight")?[0] / 2;
    c.filter_channels = shape(t, "enc_p.encoder.ffn_layers.0.conv_1.weight")?[0];
    c.kernel_size = shape(t, "enc_p.encoder.ffn_layers.0.conv_1.weight")?[2];
    c.n_layers = count(t, "enc_p.encoder.attn_layers.", ".conv_q.weight");
    let rel = shape(t, "enc_p.encoder.attn_layers.0.emb_rel_k")?;
    c.window_size = (rel[1] - 1) / 2;
    c.n_heads = c.hidden_channels / rel[2];
    c.upsample_initial_channel = shape(t, "dec.conv_pre.weight")?[0];
    let n_ups = count(t, "dec.ups.", ".weight");
    c.upsample_kernel_sizes = (0..n_ups)
        .map(|i| shape(t, &format!("dec.ups.{i}.weight")).map(|s| s[2]))
        .collect::<Result<_, _>>()?;
    // piper's upsampling kernels are twice their strides
    c.upsample_rates = c.upsample_kernel_sizes.iter().map(|k| k / 2).collect();
    c.resblock = if t.contains_key("dec.resblocks.0.convs1.0.weight") {
        "1"
    } else {
        "2"
    }
    .into();
    c.flow_n_flows = (0..8)
        .filter(|i| t.contains_key(&format!("flow.flows.{}.pre.weight", 2 * i)))
        .count() as i64;
    c.flow_n_layers = count(t, "flow.flows.0.enc.in_layers.", ".bias");
    c.flow_kernel_size = shape(t, "flow.flows.0.enc.in_layers.0.weight")?[2];
    c.dp_filter_channels = shape(t, "dp.pre.weight")?[0];
    Ok(c)
}

/// Every model key present, none extra, shapes equal.
pub fn check_against_model(
    tensors: &BTreeMap<String, Tensor>,
    config: &VitsConfig,
) -> Result<(), PiperError> {
    // (weights::declared_shapes builds in fp8, where the embedding's normal init has no
    // CPU kernel: build it in f32, 60 MB for a medium voice)
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    Vits::new(&vs.root(), config);
    let expected: BTreeMap<String, Vec<i64>> =
        vs.variables().into_iter().map(|(k, v)| (k, v.size())).collect();
    let missing: Vec<&String> = expected.keys().filter(|k| !tensors.contains_key(*k)).collect();
    let extra: Vec<&String> = tensors.keys().filter(|k| !expected.contains_key(*k)).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(PiperError::Convert(format!(
            "the export does not match the model: missing {missing:?}, unexpected {extra:?}"
        )));
    }
    for (name, want) in &expected {
        let found = tensors[name].size();
        if &found != want {
            return Err(PiperError::Convert(format!(
                "`{name}` has shape {found:?}, the model expects {want:?}"
            )));
        }
    }
    Ok(())
}

/// Converts `onnx` into `out/model.safetensors` + `out/config.json`; returns the number
/// of weight tensors and of skipped graph constants.
pub fn write_converted(onnx: &Path, out: &Path) -> Result<(usize, usize), PiperError> {
    let converted = convert_onnx(onnx)?;
    std::fs::create_dir_all(out).map_err(|source| PiperError::Read {
        path: out.to_path_buf(),
        source,
    })?;
    let named: Vec<(&str, &Tensor)> = converted.tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Tensor::write_safetensors(&named, out.join(super::WEIGHTS_FILE))?;
    let json =
        serde_json::to_string_pretty(&converted.config).map_err(|e| PiperError::Convert(e.to_string()))?;
    std::fs::write(out.join(super::CONFIG_FILE), json + "\n").map_err(|source| PiperError::Read {
        path: out.join(super::CONFIG_FILE),
        source,
    })?;
    Ok((converted.tensors.len(), converted.skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_initialiser_or_its_consumer() {
        let named = |name: &str, consumers: &[(&str, &str, usize)]| pytorch_name(name, consumers);
        assert_eq!(
            named("enc_p.proj.weight", &[]),
            Some(("enc_p.proj.weight".into(), false))
        );
        assert_eq!(
            named(
                "onnx::Conv_8168",
                &[("/flow/flows.6/enc/in_layers.0/Conv", "Conv", 1)]
            ),
            Some(("flow.flows.6.enc.in_layers.0.weight".into(), false))
        );
        assert_eq!(
            named(
                "onnx::Conv_9",
                &[("/dec/ups.1/ConvTranspose", "ConvTranspose", 2)]
            ),
            Some(("dec.ups.1.bias".into(), false))
        );
        assert_eq!(
            named("sid", &[("/enc_p/emb/Gather", "Gather", 0)]),
            Some(("enc_p.emb.weight".into(), false))
        );
        assert_eq!(
            named("/dp/flows.0/Exp_output_0", &[("/dp/flows.0/Mul", "Mul", 1)]),
            Some(("dp.flows.0.logs".into(), true))
        );
        // graph constants are not weights
        assert_eq!(named("onnx::Split_4075", &[("", "Slice", 4)]), None);
        assert_eq!(
            named("/enc_p/Constant_output_0", &[("/enc_p/Mul", "Mul", 1)]),
            None
        );
    }
}
