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
    if a.gateway.len() > a.subnet.len() || a.ip_range.len() > a.subnet.len() {
        anyhow::bail!("every --gateway and --ip-range needs a --subnet");
    }
    let configs: Vec<Value> = a
        .subnet
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = json!({"Subnet": s});
            if let Some(g) = a.gateway.get(i) {
                c["Gateway"] = g.clone().into();
            }
            if let Some(r) = a.ip_range.get(i) {
                c["IPRange"] = r.clone().into();
            }
            c
        })
        .collect();
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
