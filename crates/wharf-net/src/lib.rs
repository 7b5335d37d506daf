//! wharf-net: container networking. Today: the default bridge — an IPAM that survives
//! restarts, a veth pair per container moved into its network namespace, and NAT for the
//! subnet. It drives `ip` and `iptables` (iproute2, as Debian ships them); moving the hot path
//! (veth creation and addressing) to netlink is the next step (see docs/architecture.md).

pub mod bridge;
pub mod cmd;
pub mod ipam;

pub use bridge::{Bridge, BridgeConfig, Endpoint};
pub use ipam::{Ipam, Subnet};

/// Errors of the network setup.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{cmd}: {message}")]
    Command { cmd: String, message: String },
    #[error("invalid subnet {0:?}: expected an IPv4 CIDR such as 172.30.0.1/16")]
    Subnet(String),
    #[error("no free address left in {0}")]
    Exhausted(String),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
