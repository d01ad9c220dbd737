//! The manifest of a cache entry: a small JSON document listing the entry's tensors.
//!
//! Written last (and with SET NX), so its presence means every tensor it lists was
//! written before it.

use serde::{Deserialize, Serialize};

use crate::cache_key::CacheKey;
use crate::error::{Error, Result};
use crate::keys::KeySchema;
use crate::store::NamedRef;
use crate::tensor_ref::TensorRef;

const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    outputs: Vec<Output>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Output {
    name: String,
    tensor: TensorRef,
}

pub(crate) fn encode(outputs: &[NamedRef]) -> Result<Vec<u8>> {
    let m = Manifest {
        version: VERSION,
        outputs: outputs
            .iter()
            .map(|(name, r)| Output {
                name: name.clone(),
                tensor: r.clone(),
            })
            .collect(),
    };
    serde_json::to_vec(&m).map_err(|e| Error::Internal {
        reason: format!("cannot serialise cache manifest: {e}"),
    })
}

/// Parse a stored manifest; every tensor key must belong to this entry.
pub(crate) fn decode(keys: &KeySchema, cache: &CacheKey, bytes: &[u8]) -> Result<Vec<NamedRef>> {
    let what = || format!("cache manifest at {cache}");
    let m: Manifest =
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what(), format!("not valid json: {e}")))?;
    if m.version != VERSION {
        return Err(Error::corrupt(
            what(),
            format!("version {} is not the supported {VERSION}", m.version),
        ));
    }
    if m.outputs.is_empty() {
        return Err(Error::corrupt(what(), "lists no outputs"));
    }
    let prefix = format!("{cache}:");
    for o in &m.outputs {
        keys.parse(&o.tensor.key)
            .ok()
            .filter(|_| o.tensor.key.starts_with(&prefix))
            .ok_or_else(|| {
                Error::corrupt(
                    what(),
                    format!("output {:?} points outside the entry: {}", o.name, o.tensor.key),
                )
            })?;
    }
    Ok(m.outputs.into_iter().map(|o| (o.name, o.tensor)).collect())
}
