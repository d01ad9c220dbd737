//! sentence-transformers' `Pooling` module: token embeddings -> one vector per text.
//!
//! Reads `1_Pooling/config.json` in both formats sentence-transformers writes: the current
//! `{"embedding_dimension", "pooling_mode": "mean" | [...], "include_prompt"}` and the legacy
//! `{"word_embedding_dimension", "pooling_mode_mean_tokens": true, ...}` (all-MiniLM-L6-v2).
//! Several modes are concatenated in sentence-transformers' order (cls, max, mean,
//! mean_sqrt_len_tokens). `weightedmean` and `lasttoken` are refused by name.

use std::path::Path;

use serde_json::Value;
use tch::{Kind, Tensor};

use super::BertError;

/// One pooling strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingMode {
    /// The first real token (`[CLS]`).
    Cls,
    /// Element-wise max over real tokens.
    Max,
    /// Mean over real tokens.
    Mean,
    /// Sum over real tokens divided by sqrt(number of real tokens).
    MeanSqrtLen,
}

impl PoolingMode {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "cls" => PoolingMode::Cls,
            "max" => PoolingMode::Max,
            "mean" => PoolingMode::Mean,
            "mean_sqrt_len_tokens" => PoolingMode::MeanSqrtLen,
            _ => return None,
        })
    }
}

/// Legacy boolean keys, in sentence-transformers' concatenation order.
const LEGACY_KEYS: [(&str, &str); 6] = [
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
];

/// A parsed `1_Pooling/config.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pooling {
    /// The token embedding width the pooling expects (the encoder's hidden size).
    pub embedding_dimension: i64,
    /// Non-empty; the output is their concatenation.
    pub modes: Vec<PoolingMode>,
}

impl Pooling {
    /// Mean pooling over `dim`-wide token embeddings.
    pub fn mean(dim: i64) -> Self {
        Pooling {
            embedding_dimension: dim,
            modes: vec![PoolingMode::Mean],
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, BertError> {
        let text = std::fs::read_to_string(path).map_err(|source| BertError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|source| BertError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&json).map_err(|(field, message)| BertError::Config {
            path: path.to_path_buf(),
            field,
            message,
        })
    }

    fn from_json(json: &Value) -> Result<Self, (&'static str, String)> {
        let dim_field = if json.get("embedding_dimension").is_some() {
            "embedding_dimension"
        } else {
            "word_embedding_dimension"
        };
        let embedding_dimension = json
            .get(dim_field)
            .and_then(Value::as_i64)
            .filter(|d| *d > 0)
            .ok_or((dim_field, "must be a positive integer".to_string()))?;
        let names: Vec<String> = match json.get("pooling_mode") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or(("pooling_mode", "must be a string or a list of strings".into()))?,
            Some(_) => {
                return Err(("pooling_mode", "must be a string or a list of strings".into()));
            }
            None => {
                let on: Vec<String> = LEGACY_KEYS
                    .iter()
                    .filter(|(key, _)| json.get(*key).and_then(Value::as_bool) == Some(true))
                    .map(|(_, mode)| mode.to_string())
                    .collect();
                if on.is_empty() { vec!["mean".into()] } else { on }
            }
        };
        if names.is_empty() {
            return Err(("pooling_mode", "must name at least one mode".into()));
        }
        let modes = names
            .iter()
            .map(|n| {
                PoolingMode::parse(n).ok_or((
                    "pooling_mode",
                    format!("`{n}` is not supported (cls, max, mean, mean_sqrt_len_tokens are)"),
                ))
            })
            .collect::<Result<_, _>>()?;
        Ok(Pooling {
            embedding_dimension,
            modes,
        })
    }

    /// The width of a pooled vector.
    pub fn output_dimension(&self) -> i64 {
        self.embedding_dimension * self.modes.len() as i64
    }

    /// `tokens`: (B, T, D) in any float kind; `mask`: (B, T), non-zero for real tokens.
    /// Returns (B, D * modes) in f32 (pooling accumulates in f32 whatever the model's dtype).
    pub fn apply(&self, tokens: &Tensor, mask: &Tensor) -> Tensor {
        let tokens = tokens.to_kind(Kind::Float);
        let mask = mask.to_device(tokens.device());
        let keep = mask.ne(0).unsqueeze(-1); // (B, T, 1)
        let weights = keep.to_kind(Kind::Float);
        let sum = (&tokens * &weights).sum_dim_intlist(1, false, Kind::Float);
        let count = weights.sum_dim_intlist(1, false, Kind::Float).clamp_min(1e-9);
        let parts: Vec<Tensor> = self
            .modes
            .iter()
            .map(|mode| match mode {
                PoolingMode::Cls => {
                    // The first real token, as sentence-transformers finds it.
                    let first = mask.ne(0).to_kind(Kind::Int).argmax(1, false);
                    let d = tokens.size()[2];
                    tokens
                        .gather(1, &first.view([-1, 1, 1]).expand([-1, 1, d], false), false)
                        .squeeze_dim(1)
                }
                PoolingMode::Max => tokens
                    .masked_fill(&keep.logical_not(), f64::NEG_INFINITY)
                    .amax([1].as_slice(), false),
                PoolingMode::Mean => &sum / &count,
                PoolingMode::MeanSqrtLen => &sum / count.sqrt(),
            })
            .collect();
        Tensor::cat(&parts, 1)
    }
}

/// Row-wise L2 normalisation, `x / max(||x||, 1e-12)` (torch's `F.normalize`).
pub fn l2_normalize(xs: &Tensor) -> Tensor {
    let norm = xs.norm_scalaropt_dim(2, [-1].as_slice(), true).clamp_min(1e-12);
    xs / norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_both_config_formats() {
        let legacy = json!({"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false});
        assert_eq!(Pooling::from_json(&legacy).unwrap(), Pooling::mean(384));
        let current = json!({"embedding_dimension": 8, "pooling_mode": ["mean", "cls"],
            "include_prompt": true});
        let p = Pooling::from_json(&current).unwrap();
        assert_eq!(p.modes, vec![PoolingMode::Mean, PoolingMode::Cls]);
        assert_eq!(p.output_dimension(), 16);
        let err =
            Pooling::from_json(&json!({"embedding_dimension": 8, "pooling_mode": "lasttoken"})).unwrap_err();
        assert_eq!(err.0, "pooling_mode");
    }

    #[test]
    fn pools_only_real_tokens() {
        let tokens = Tensor::from_slice(&[1f32, 2., 3., 4., 100., 100.]).view([1, 3, 2]);
        let mask = Tensor::from_slice(&[1i64, 1, 0]).view([1, 3]);
        let all = Pooling {
            embedding_dimension: 2,
            modes: vec![
                PoolingMode::Cls,
                PoolingMode::Max,
                PoolingMode::Mean,
                PoolingMode::MeanSqrtLen,
            ],
        };
        let got = Vec::<f32>::try_from(all.apply(&tokens, &mask).view([-1])).unwrap();
        let s = 2f32.sqrt();
        let want = [1., 2., 3., 4., 2., 3., 4. / s, 6. / s];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
        }
        let n = l2_normalize(&Tensor::from_slice(&[3f32, 4., 0., 0.]).view([2, 2]));
        assert_eq!(Vec::<f32>::try_from(n.view([-1])).unwrap(), [0.6, 0.8, 0., 0.]);
    }
}
