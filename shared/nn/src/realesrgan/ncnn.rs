//! Reading ncnn models (`.param` text graph + `.bin` weights) as Real-ESRGAN's ncnn
//! releases ship them, to convert their weights to safetensors.
//!
//! The `.bin` holds, in layer order, each layer's blobs: a Convolution's weights as a
//! "tagged" blob (a 4-byte tag, then fp16 values padded to 4 bytes for tag `0x01306B47`,
//! or f32 values for tag 0), then its bias as raw f32; a PReLU's slopes as raw f32. Layers
//! without weights (Input, Split, Concat, Eltwise, BinaryOp, Interp, PixelShuffle) take
//! nothing. Any other weighted layer is refused.

use std::{collections::BTreeMap, path::Path};

use half::f16;

/// The magic first line of a text `.param`.
const PARAM_MAGIC: &str = "7767517";
const TAG_FP16: u32 = 0x0130_6B47;
const TAG_F32: u32 = 0;

#[derive(Debug, thiserror::Error)]
pub enum NcnnError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: line {line}: {message}")]
    Param {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: layer {layer}: {message}")]
    Bin {
        path: String,
        layer: String,
        message: String,
    },
}

/// One layer of the graph: type, name and its `key=value` parameters.
#[derive(Debug, Clone)]
pub struct Layer {
    pub kind: String,
    pub name: String,
    pub params: BTreeMap<i32, String>,
}

impl Layer {
    fn int(&self, key: i32, default: i64) -> Result<i64, String> {
        match self.params.get(&key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("parameter {key}={v} is not an integer")),
        }
    }
}

/// A weight tensor read from the `.bin`, f32, with its shape.
#[derive(Debug, Clone)]
pub struct Blob {
    pub shape: Vec<i64>,
    pub values: Vec<f32>,
}

/// The weights of one layer, in `.bin` order.
#[derive(Debug, Clone)]
pub enum LayerWeights {
    /// Convolution: weight (out, in, k, k) and bias (out,) when `5=1`.
    Conv { weight: Blob, bias: Option<Blob> },
    /// PReLU: slopes (channels,).
    PRelu { slope: Blob },
}

pub fn parse_param(path: &Path) -> Result<Vec<Layer>, NcnnError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| NcnnError::Io {
        path: display.clone(),
        source,
    })?;
    let fail = |line: usize, message: String| NcnnError::Param {
        path: display.clone(),
        line,
        message,
    };
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, magic)) if magic.trim() == PARAM_MAGIC => {}
        _ => {
            return Err(fail(
                1,
                format!("not a text ncnn param (first line must be {PARAM_MAGIC})"),
            ));
        }
    }
    let (_, counts) = lines
        .next()
        .ok_or_else(|| fail(2, "no layer count line".into()))?;
    let layer_count: usize = counts
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| fail(2, format!("bad layer count line `{counts}`")))?;
    let mut layers = Vec::with_capacity(layer_count);
    for (i, line) in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let n = |k: usize| -> Result<usize, NcnnError> {
            fields
                .get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| fail(i + 1, format!("bad layer line `{line}`")))
        };
        let (inputs, outputs) = (n(2)?, n(3)?);
        let first_param = 4 + inputs + outputs;
        if fields.len() < first_param {
            return Err(fail(
                i + 1,
                format!("layer line has fewer than {first_param} fields"),
            ));
        }
        let mut params = BTreeMap::new();
        for kv in &fields[first_param..] {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| fail(i + 1, format!("parameter `{kv}` is not key=value")))?;
            let k: i32 = k
                .parse()
                .map_err(|_| fail(i + 1, format!("parameter key `{k}`")))?;
            params.insert(k, v.to_owned());
        }
        layers.push(Layer {
            kind: fields[0].to_owned(),
            name: fields[1].to_owned(),
            params,
        });
    }
    if layers.len() != layer_count {
        return Err(fail(
            2,
            format!("declares {layer_count} layers, has {}", layers.len()),
        ));
    }
    Ok(layers)
}

struct BinReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BinReader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos + n;
        if end > self.data.len() {
            return Err(format!(
                "needs {n} bytes at offset {}, the file has {}",
                self.pos,
                self.data.len()
            ));
        }
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn raw_f32(&mut self, n: usize) -> Result<Vec<f32>, String> {
        Ok(self
            .take(4 * n)?
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect())
    }
    fn tagged(&mut self, n: usize) -> Result<Vec<f32>, String> {
        let tag = u32::from_le_bytes(self.take(4)?.try_into().unwrap());
        match tag {
            TAG_FP16 => {
                let bytes = self.take((2 * n).div_ceil(4) * 4)?;
                Ok(bytes[..2 * n]
                    .chunks_exact(2)
                    .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect())
            }
            TAG_F32 => self.raw_f32(n),
            other => Err(format!(
                "weight tag 0x{other:08x} (quantised storage) is not supported"
            )),
        }
    }
}

/// Reads the weights of every weighted layer of `layers` from `bin`, in order; the whole
/// file must be consumed.
pub fn read_weights(layers: &[Layer], bin: &Path) -> Result<Vec<(String, LayerWeights)>, NcnnError> {
    let display = bin.display().to_string();
    let data = std::fs::read(bin).map_err(|source| NcnnError::Io {
        path: display.clone(),
        source,
    })?;
    let mut r = BinReader { data: &data, pos: 0 };
    let mut out = Vec::new();
    for layer in layers {
        let fail = |message: String| NcnnError::Bin {
            path: display.clone(),
            layer: layer.name.clone(),
            message,
        };
        match layer.kind.as_str() {
            "Convolution" => {
                let out_ch = layer.int(0, 0).map_err(fail)?;
                let kernel = layer.int(1, 0).map_err(fail)?;
                let has_bias = layer.int(5, 0).map_err(fail)? == 1;
                let size = layer.int(6, 0).map_err(fail)?;
                if out_ch <= 0 || kernel <= 0 || size <= 0 || size % (out_ch * kernel * kernel) != 0 {
                    return Err(fail(format!("inconsistent sizes 0={out_ch} 1={kernel} 6={size}")));
                }
                // the nets here use stride 1, dilation 1 and "same" padding throughout
                for (key, what, want) in [(2, "dilation", 1), (3, "stride", 1), (4, "padding", kernel / 2)] {
                    let value = layer.int(key, want).map_err(fail)?;
                    if value != want {
                        return Err(fail(format!("{what} {value} is not supported (only {want})")));
                    }
                }
                let in_ch = size / (out_ch * kernel * kernel);
                let weight = Blob {
                    shape: vec![out_ch, in_ch, kernel, kernel],
                    values: r.tagged(size as usize).map_err(fail)?,
                };
                let bias = if has_bias {
                    Some(Blob {
                        shape: vec![out_ch],
                        values: r.raw_f32(out_ch as usize).map_err(fail)?,
                    })
                } else {
                    None
                };
                out.push((layer.name.clone(), LayerWeights::Conv { weight, bias }));
            }
            "PReLU" => {
                let n = layer.int(0, 1).map_err(fail)?;
                let slope = Blob {
                    shape: vec![n],
                    values: r.raw_f32(n as usize).map_err(fail)?,
                };
                out.push((layer.name.clone(), LayerWeights::PRelu { slope }));
            }
            "Input" | "Split" | "Concat" | "Eltwise" | "BinaryOp" | "Interp" | "PixelShuffle" => {}
            other => return Err(fail(format!("layer type {other} is not supported"))),
        }
    }
    if r.pos != data.len() {
        return Err(NcnnError::Bin {
            path: display,
            layer: "(end)".into(),
            message: format!("{} bytes left after the last layer", data.len() - r.pos),
        });
    }
    Ok(out)
}
