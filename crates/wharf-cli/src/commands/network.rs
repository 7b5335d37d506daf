//! Network commands: whatever wharfd serves of `/networks`; where it serves nothing the
//! daemon's own error is shown.

use super::Ctx;
use crate::cli::*;
use crate::client::{enc, enc_path};
use crate::format::names::short_id;
use crate::format::Format;
use crate::opts::parse;
use anyhow::Result;
use serde_json::{json, Map, Value};

pub async fn ls(ctx: &Ctx, a: NetworkLsArgs) -> Result<i32> {
    let mut q = "/networks".to_string();
    if let Some(f) = parse::filters(&a.filter)? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let v = ctx.client.get_json(&q).await?;
    let mut nets: Vec<Value> = v.as_array().cloned().unwrap_or_default();
    nets.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let rows: Vec<Value> = nets
        .iter()
        .map(|n| {
            let id = n["Id"].as_str().unwrap_or("");
            json!({
                "ID": if a.no_trunc { id.to_string() } else { short_id(id) },
                "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
                "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
                "CreatedAt": n["Created"],
                "~Label": n["Labels"].clone(),
            })
        })
        .collect();
    let header = json!({"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "IPv6": "IPV6", "Internal": "INTERNAL", "CreatedAt": "CREATED AT", "~Label": {}});
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("table") => "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into(),
            Some(f) => f.to_string(),
        }
    };
    print!("{}", Format::parse(&fmt)?.render(&header, &rows)?);
    Ok(0)
}

pub async fn create(ctx: &Ctx, a: NetworkCreateArgs) -> Result<i32> {
    let kv = |l: &[String]| -> Value {
        let mut m = Map::new();
        for s in l {
            let (k, v) = parse::key_value(s);
            m.insert(k, v.into());
        }
        Value::Object(m)
    };
    let configs = ipam_configs(&a.subnet, &a.gateway, &a.ip_range)?;
    let body = json!({
        "Name": a.name,
        "Driver": a.driver,
        "Internal": a.internal,
        "Attachable": a.attachable,
        "EnableIPv6": a.ipv6,
        "Options": kv(&a.opt),
        "Labels": kv(&a.label),
        "IPAM": {"Driver": "default", "Config": configs},
    });
    let v = ctx
        .client
        .post_json("/networks/create", Some(&body))
        .await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

pub async fn rm(ctx: &Ctx, a: NetworkRmArgs) -> Result<i32> {
    let mut failed = false;
    for n in &a.names {
        match ctx
            .client
            .delete(&format!("/networks/{}", enc_path(n)))
            .await
        {
            Ok(_) => println!("{n}"),
            Err(e) if e.downcast_ref::<crate::client::ConnectError>().is_some() => return Err(e),
            Err(e)
                if a.force
                    && crate::client::daemon_error(&e)
                        .is_some_and(crate::client::DaemonError::is_not_found) => {}
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    // docker 28 ends a failed `network rm` with the status line of its StatusError.
    if failed {
        return Err(super::status(1, "exit status 1"));
    }
    Ok(0)
}

pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.force
        && !super::confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let mut q = "/networks/prune".to_string();
    if let Some(f) = parse::filters(&a.filter)? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let v = ctx.client.post_json(&q, None).await?;
    super::volume::print_deleted("Deleted Networks:", &v["NetworksDeleted"]);
    Ok(0)
}

pub async fn connect(ctx: &Ctx, a: NetworkConnectArgs) -> Result<i32> {
    let mut ep = json!({});
    if !a.alias.is_empty() {
        ep["Aliases"] = json!(a.alias);
    }
    let mut ipam = serde_json::Map::new();
    if let Some(ip) = &a.ip {
        ipam.insert("IPv4Address".into(), json!(ip));
    }
    if let Some(ip6) = &a.ip6 {
        ipam.insert("IPv6Address".into(), json!(ip6));
    }
    if !ipam.is_empty() {
        ep["IPAMConfig"] = serde_json::Value::Object(ipam);
    }
    if !a.links.is_empty() {
        ep["Links"] = json!(a.links);
    }
    let body = json!({"Container": a.container, "EndpointConfig": ep});
    ctx.client
        .post_json(
            &format!("/networks/{}/connect", enc_path(&a.network)),
            Some(&body),
        )
        .await?;
    Ok(0)
}

pub async fn disconnect(ctx: &Ctx, a: NetworkDisconnectArgs) -> Result<i32> {
    let body = json!({"Container": a.container, "Force": a.force});
    ctx.client
        .post_json(
            &format!("/networks/{}/disconnect", enc_path(&a.network)),
            Some(&body),
        )
        .await?;
    Ok(0)
}

/// `a.b.c.d/n` or `x::/n` → (address as a number, bits of the family, prefix length).
fn cidr(s: &str) -> Option<(u128, u32, u32)> {
    let (ip, p) = s.split_once('/')?;
    let p: u32 = p.parse().ok()?;
    match ip.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(a) if p <= 32 => Some((u128::from(u32::from(a)), 32, p)),
        std::net::IpAddr::V6(a) if p <= 128 => Some((u128::from(a), 128, p)),
        _ => None,
    }
}

/// Whether `inner` (an address, or a CIDR) is in subnet `outer`, as docker pairs each
/// `--gateway` and `--ip-range` with the `--subnet` that contains it.
fn in_subnet(outer: &str, inner: &str) -> bool {
    let Some((net, bits, len)) = cidr(outer) else {
        return false;
    };
    let inner = if inner.contains('/') {
        cidr(inner)
    } else {
        inner.parse::<std::net::IpAddr>().ok().map(|ip| match ip {
            std::net::IpAddr::V4(a) => (u128::from(u32::from(a)), 32, 32),
            std::net::IpAddr::V6(a) => (u128::from(a), 128, 128),
        })
    };
    let Some((ip, ibits, ilen)) = inner else {
        return false;
    };
    if ibits != bits || ilen < len {
        return false;
    }
    let shift = 128 - (128 - bits) - len; // host bits of the subnet, within its family
    let mask = if shift >= 128 { 0 } else { u128::MAX << shift };
    (net & mask) == (ip & mask)
}

/// `IPAM.Config` of `network create`: one entry per `--subnet`, each with the `--gateway`
/// and `--ip-range` it contains (IPv4 and IPv6 subnets can be mixed, in any order).
fn ipam_configs(subnets: &[String], gateways: &[String], ranges: &[String]) -> Result<Vec<Value>> {
    let mut configs: Vec<Value> = subnets.iter().map(|s| json!({"Subnet": s})).collect();
    for (what, key, list) in [
        ("gateway", "Gateway", gateways),
        ("range", "IPRange", ranges),
    ] {
        for v in list {
            let i = subnets
                .iter()
                .position(|s| in_subnet(s, v))
                .ok_or_else(|| anyhow::anyhow!("no matching subnet for {what} {v}"))?;
            if configs[i].get(key).is_some() {
                anyhow::bail!(
                    "cannot configure multiple {what}s for subnet {}",
                    subnets[i]
                );
            }
            configs[i][key] = json!(v);
        }
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_and_ranges_go_with_the_subnet_that_has_them() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = ipam_configs(
            &s(&["10.1.0.0/24", "fd00:1::/64"]),
            &s(&["fd00:1::fe"]),
            &s(&["10.1.0.128/25"]),
        )
        .unwrap();
        assert_eq!(
            c,
            vec![
                json!({"Subnet": "10.1.0.0/24", "IPRange": "10.1.0.128/25"}),
                json!({"Subnet": "fd00:1::/64", "Gateway": "fd00:1::fe"}),
            ]
        );
        assert!(ipam_configs(&s(&["10.1.0.0/24"]), &s(&["10.2.0.1"]), &[]).is_err());
        assert!(ipam_configs(&s(&["10.1.0.0/24"]), &s(&["10.1.0.1", "10.1.0.2"]), &[]).is_err());
        assert!(ipam_configs(&s(&["fd00:1::/64"]), &s(&["10.1.0.1"]), &[]).is_err());
        assert!(
            !in_subnet("10.1.0.0/24", "10.1.0.0/16"),
            "a range wider than its subnet"
        );
        assert!(in_subnet("0.0.0.0/0", "192.0.2.1"));
    }
}
