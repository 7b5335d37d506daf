//! `HostConfig.Mounts[]` (what `docker run --mount` sends), typed. Unknown keys are tolerated;
//! which combinations are valid is the engine's to decide (with Docker's messages).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// One entry of `HostConfig.Mounts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    /// `bind`, `volume`, `tmpfs` (also `npipe`, `cluster`, `image`, which wharf refuses).
    #[serde(rename = "Type", deserialize_with = "null_as_default")]
    pub kind: String,
    #[serde(deserialize_with = "null_as_default")]
    pub source: String,
    #[serde(deserialize_with = "null_as_default")]
    pub target: String,
    #[serde(deserialize_with = "null_as_default")]
    pub read_only: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub consistency: String,
    pub bind_options: Option<BindOptions>,
    pub volume_options: Option<VolumeOptions>,
    pub tmpfs_options: Option<TmpfsOptions>,
    pub image_options: Option<serde_json::Value>,
}

/// `Mounts[].BindOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    #[serde(deserialize_with = "null_as_default")]
    pub propagation: String,
    #[serde(deserialize_with = "null_as_default")]
    pub non_recursive: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub create_mountpoint: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub read_only_non_recursive: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub read_only_force_recursive: bool,
}

/// `Mounts[].VolumeOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    #[serde(deserialize_with = "null_as_default")]
    pub no_copy: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    pub subpath: String,
    pub driver_config: Option<DriverConfig>,
}

/// `Mounts[].VolumeOptions.DriverConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    #[serde(deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub options: BTreeMap<String, String>,
}

/// `Mounts[].TmpfsOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    #[serde(deserialize_with = "null_as_default")]
    pub size_bytes: i64,
    /// Permission bits (the CLI parses `tmpfs-mode` as octal and sends the number).
    #[serde(deserialize_with = "null_as_default")]
    pub mode: u32,
    /// Extra flags (`[["exec"], ["uid", "1000"]]`).
    #[serde(deserialize_with = "null_as_default")]
    pub options: Vec<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_mount_bodies_parse() {
        let m: Vec<Mount> = serde_json::from_str(
            r#"[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":1023}},
                {"Type":"volume","Source":"v","Target":"/v","ReadOnly":true,
                 "VolumeOptions":{"NoCopy":true,"Labels":null,"DriverConfig":{"Name":"","Options":{"type":"tmpfs"}}}},
                {"Type":"bind","Source":"/h","Target":"/b","BindOptions":{"Propagation":"rshared"}}]"#,
        )
        .unwrap();
        assert_eq!(m[0].tmpfs_options.as_ref().unwrap().mode, 0o1777);
        assert!(m[1].read_only && m[1].volume_options.as_ref().unwrap().no_copy);
        assert_eq!(m[2].bind_options.as_ref().unwrap().propagation, "rshared");
    }
}
