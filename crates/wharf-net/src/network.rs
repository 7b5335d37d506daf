//! A network's persisted record (`network/networks/<id>.json`) and what `network create`
//! asks for.

use crate::ipam::Subnet;
use crate::NetError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Docker's option naming the bridge link of a network.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// Docker's option setting the MTU of a network's interfaces.
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";

/// One network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: String,
    /// The Linux bridge (bridge driver only).
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub subnet: Option<Subnet>,
    /// Dynamic addresses come from here (`--ip-range`).
    #[serde(default)]
    pub ip_range: Option<String>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub mtu: u32,
    /// The default `bridge` network: no embedded DNS there, as with Docker.
    #[serde(default)]
    pub default_bridge: bool,
}

impl Network {
    /// `bridge`, `host` and `none` cannot be removed.
    pub fn predefined(&self) -> bool {
        self.default_bridge || self.driver == "host" || self.driver == "null"
    }

    /// Whether containers on it resolve each other through the embedded DNS server.
    pub fn has_dns(&self) -> bool {
        self.driver == "bridge" && !self.default_bridge
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<(), NetError> {
        crate::cmd::write_atomic(
            &dir.join(format!("{}.json", self.id)),
            &serde_json::to_vec_pretty(self).expect("serializable"),
        )
    }
}

/// What `POST /networks/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}
