//! wharf-net: container networking. Networks (the default `bridge`, user-defined bridges,
//! `host`, `none`) persisted with their IPAM; per container a veth pair moved into its
//! network namespace; NAT, isolation and published ports as iptables rules in chains of
//! their own; an embedded DNS server on 127.0.0.11 inside containers on user networks.
//! Links, addresses and routes are made with rtnetlink (`netlink`), rules with `iptables`.

pub mod bridge;
pub mod cmd;
pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod manager;
pub mod netlink;
pub mod network;
pub mod ports;
pub mod proxy;

pub use bridge::{mac_for, BridgeConfig, Endpoint};
pub use ipam::{Ipam, Subnet, Subnet6};
pub use manager::{NetConfig, Networks};
pub use network::{CreateOptions, IpamRequest, Network, Pool};
pub use ports::PortMapping;

/// Errors of the network setup.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{cmd}: {message}")]
    Command { cmd: String, message: String },
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR such as 172.30.0.1/16")]
    Subnet(String),
    #[error("invalid subnet {0:?}: expected an IPv6 CIDR such as fd00:1::1/64")]
    Subnet6(String),
    #[error("no free address left in {0}")]
    Exhausted(String),
    /// A bad argument (400).
    #[error("{0}")]
    Invalid(String),
    /// An address, port or name already taken (409 / 403).
    #[error("{0}")]
    InUse(String),
    #[error("network {0} not found")]
    NotFound(String),
    /// An operation not allowed on this network (403).
    #[error("{0}")]
    Forbidden(String),
    /// A netlink request the kernel refused (or a socket that could not be opened).
    #[error("{op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl NetError {
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> NetError {
        NetError::Io {
            path: path.into(),
            source,
        }
    }
}
