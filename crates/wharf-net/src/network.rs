//! A network's persisted record (`network/networks/<id>.json`) and what `network create`
//! asks for.

use crate::ipam::{Subnet, Subnet6};
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
    /// The IPv4 subnets after the first (`subnet`), in the order `network create` gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_subnets: Vec<Pool<Subnet>>,
    /// `--ipv6`: containers get an address of `subnets6` too.
    #[serde(default)]
    pub enable_ipv6: bool,
    /// The IPv6 subnets `network create` gave; unused without `enable_ipv6` (as with
    /// Docker, which keeps an IPv6 subnet given without `--ipv6` in the network's IPAM
    /// config and gives no container an address of it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subnets6: Vec<Pool<Subnet6>>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `IPAM.Options`: kept and shown, as dockerd's default IPAM driver does (it uses none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ipam_options: BTreeMap<String, String>,
    #[serde(default)]
    pub mtu: u32,
    /// The default `bridge` network: no embedded DNS there, as with Docker.
    #[serde(default)]
    pub default_bridge: bool,
}

/// One more subnet of a network, with its `--ip-range`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pool<S> {
    pub subnet: S,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
}

impl Network {
    /// Every IPv4 subnet with its range, the first (`subnet`) first.
    pub fn subnets4(&self) -> Vec<Pool<Subnet>> {
        let mut out: Vec<Pool<Subnet>> = self
            .subnet
            .iter()
            .map(|s| Pool {
                subnet: *s,
                ip_range: self.ip_range.clone(),
            })
            .collect();
        out.extend(self.more_subnets.iter().cloned());
        out
    }

    /// The IPv6 subnets in use: `subnets6` with `--ipv6`, else none.
    pub fn active6(&self) -> &[Pool<Subnet6>] {
        if self.enable_ipv6 {
            &self.subnets6
        } else {
            &[]
        }
    }

    /// Whether any of the network's subnets in use (either family) contains `ip`.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        match ip {
            std::net::IpAddr::V4(a) => self.subnets4().iter().any(|p| p.subnet.contains(a)),
            std::net::IpAddr::V6(a) => self.active6().iter().any(|p| p.subnet.contains(a)),
        }
    }

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

/// One entry of `IPAM.Config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpamRequest {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

/// What `POST /networks/create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    pub driver: String,
    /// `IPAM.Config`: IPv4 and IPv6 subnets, in order.
    pub ipam: Vec<IpamRequest>,
    pub enable_ipv6: bool,
    pub internal: bool,
    pub attachable: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// `IPAM.Options`.
    pub ipam_options: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_of_before_several_subnets_load_and_round_trip() {
        let old = r#"{"id":"abc","name":"n","driver":"bridge","created":"x","bridge":"wt-abc",
            "subnet":"10.4.0.1/24","ip_range":null,"internal":false,"attachable":false,
            "labels":{},"options":{},"mtu":1500,"default_bridge":false}"#;
        let n: Network = serde_json::from_str(old).unwrap();
        assert!(!n.enable_ipv6 && n.subnets6.is_empty() && n.more_subnets.is_empty());
        assert_eq!(n.subnets4().len(), 1);
        // A network without the new fields is written as before.
        let again = serde_json::to_value(&n).unwrap();
        assert!(again.get("subnets6").is_none() && again.get("more_subnets").is_none());
        let mut six = n.clone();
        six.enable_ipv6 = true;
        six.subnets6.push(Pool {
            subnet: Subnet6::parse("fd00:1::1/64").unwrap(),
            ip_range: None,
        });
        let back: Network = serde_json::from_str(&serde_json::to_string(&six).unwrap()).unwrap();
        assert_eq!(back, six);
        assert!(back.contains("fd00:1::9".parse().unwrap()));
        assert!(back.contains("10.4.0.9".parse().unwrap()));
        assert!(!back.contains("fd00:2::9".parse().unwrap()));
    }
}
