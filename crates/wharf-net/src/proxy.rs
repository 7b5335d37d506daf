//! The `[::1]` side of ports published on a network with IPv6: the kernel drops a packet
//! with source `::1` that is routed out of the host (IPv6 has no `route_localnet`), so DNAT
//! cannot take a connection to `[::1]:port` to a container as it does for 127.0.0.1. wharfd
//! listens on `[::1]:port` instead and copies each TCP connection to the container's IPv6
//! address: what docker-proxy does for every port, here only for this one address, and only
//! while wharfd runs (after a restart `Networks::restore_ports` starts the proxies again).

use crate::ports::PortMapping;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

/// The running proxies, by container id.
#[derive(Default)]
pub struct Proxies {
    tasks: Mutex<HashMap<String, Vec<tokio::task::AbortHandle>>>,
}

/// The mappings that need a proxy: TCP, on every IPv6 address (`::`) or on `::1`.
pub fn needs_proxy(m: &PortMapping) -> bool {
    m.proto == "tcp"
        && matches!(m.host_ip, IpAddr::V6(h) if h.is_unspecified() || h.is_loopback())
        && m.container_ip.is_ipv6()
}

impl Proxies {
    /// Starts the proxies of container `id`'s `maps` (those `needs_proxy` selects), on the
    /// tokio runtime of the caller (none outside one: then nothing listens on `[::1]`).
    pub fn start(&self, id: &str, maps: &[PortMapping]) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no runtime: [::1] ports of {id} are not proxied");
            return;
        };
        let mut handles = Vec::new();
        for m in maps.iter().filter(|m| needs_proxy(m)) {
            let listen = SocketAddr::from((Ipv6Addr::LOCALHOST, m.host_port));
            let to = SocketAddr::new(m.container_ip, m.container_port);
            let l = match std::net::TcpListener::bind(listen) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!("cannot listen on {listen} for {to}: {e}");
                    continue;
                }
            };
            if let Err(e) = l.set_nonblocking(true) {
                tracing::warn!("{listen}: {e}");
                continue;
            }
            let task = rt.spawn(async move {
                let Ok(l) = tokio::net::TcpListener::from_std(l) else {
                    return;
                };
                loop {
                    let Ok((mut client, _)) = l.accept().await else {
                        return;
                    };
                    tokio::spawn(async move {
                        if let Ok(mut up) = tokio::net::TcpStream::connect(to).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                        }
                    });
                }
            });
            handles.push(task.abort_handle());
        }
        if !handles.is_empty() {
            self.stop(id);
            self.tasks
                .lock()
                .expect("proxy lock")
                .insert(id.to_string(), handles);
        }
    }

    /// Stops container `id`'s proxies (their listeners close; open connections end with
    /// their tasks' next poll).
    pub fn stop(&self, id: &str) {
        if let Some(hs) = self.tasks.lock().expect("proxy lock").remove(id) {
            for h in hs {
                h.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn loopback_connections_reach_the_container_address() {
        // The "container": a listener on [::1] too (no namespace needed for the copying).
        let backend = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
        let bport = backend.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut c, _) = backend.accept().await.unwrap();
            c.write_all(b"hello6").await.unwrap();
        });
        let free = std::net::TcpListener::bind("[::1]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let m = PortMapping {
            proto: "tcp".into(),
            host_ip: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            host_port: free,
            container_ip: IpAddr::V6(Ipv6Addr::LOCALHOST),
            container_port: bport,
        };
        let p = Proxies::default();
        p.start("c1", std::slice::from_ref(&m));
        let mut s = tokio::net::TcpStream::connect(("::1", free)).await.unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello6");
        p.stop("c1");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(
            tokio::net::TcpStream::connect(("::1", free)).await.is_err(),
            "stopped: nothing listens"
        );
        let v4 = PortMapping {
            host_ip: "0.0.0.0".parse().unwrap(),
            container_ip: "10.0.0.2".parse().unwrap(),
            ..m
        };
        assert!(!needs_proxy(&v4));
    }
}
