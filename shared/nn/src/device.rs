//! Device and dtype as they appear in service config (`device = "cuda:0"`, `dtype = "f16"`).

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

/// Where a model runs. Parsed from `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
}

impl DeviceSpec {
    /// The tch device; errors when CUDA is asked for and libtorch has none.
    pub fn to_device(self) -> Result<tch::Device, String> {
        match self {
            DeviceSpec::Cpu => Ok(tch::Device::Cpu),
            DeviceSpec::Cuda(i) => {
                let n = tch::Cuda::device_count();
                if (i as i64) < n {
                    Ok(tch::Device::Cuda(i))
                } else {
                    Err(format!(
                        "device `cuda:{i}` requested but libtorch sees {n} cuda device(s)"
                    ))
                }
            }
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(DeviceSpec::Cuda)
                .ok_or_else(|| format!("`device` must be `cpu`, `cuda` or `cuda:N`, got `{s}`")),
        }
    }
}

impl TryFrom<String> for DeviceSpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl From<DeviceSpec> for String {
    fn from(d: DeviceSpec) -> String {
        d.to_string()
    }
}

/// The floating-point type weights are held in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
    Bf16,
}

impl DType {
    pub fn kind(self) -> tch::Kind {
        match self {
            DType::F32 => tch::Kind::Float,
            DType::F16 => tch::Kind::Half,
            DType::Bf16 => tch::Kind::BFloat16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_names_the_field_on_error() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        let err = "gpu".parse::<DeviceSpec>().unwrap_err();
        assert!(err.contains("`device`"), "{err}");
    }

    #[test]
    fn cuda_without_a_gpu_is_a_clear_error() {
        if tch::Cuda::device_count() == 0 {
            let err = DeviceSpec::Cuda(0).to_device().unwrap_err();
            assert!(err.contains("0 cuda device"), "{err}");
        }
        assert_eq!(DeviceSpec::Cpu.to_device().unwrap(), tch::Device::Cpu);
    }
}
