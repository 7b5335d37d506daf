//! Volume commands: create, ls, rm, prune (inspect is in `system`).

use super::{each, status, Ctx};
use crate::cli::*;
use crate::client::{enc, enc_path};
use crate::format::human::human_size;
use crate::format::Format;
use crate::opts::parse;
use anyhow::Result;
use serde_json::{json, Map, Value};

pub async fn create(ctx: &Ctx, a: VolumeCreateArgs) -> Result<i32> {
    if a.name.is_some() && a.name_flag.is_some() {
        return Err(status(
            1,
            "conflicting options: cannot specify a volume-name through both --name and as a positional arg",
        ));
    }
    let name = a.name.or(a.name_flag).unwrap_or_default();
    let kv = |l: &[String]| -> Value {
        let mut m = Map::new();
        for s in l {
            let (k, v) = parse::key_value(s);
            m.insert(k, v.into());
        }
        Value::Object(m)
    };
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": kv(&a.opt),
        "Labels": kv(&a.label),
    });
    let v = ctx.client.post_json("/volumes/create", Some(&body)).await?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

/// Natural order of names ("v2" before "v10"), as docker sorts volumes.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |s: &str| -> Vec<(String, u128)> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut num = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                num.push(c);
            } else {
                if !num.is_empty() {
                    out.push((std::mem::take(&mut cur), num.parse().unwrap_or(0)));
                    num.clear();
                }
                cur.push(c);
            }
        }
        out.push((cur, num.parse().unwrap_or(0)));
        out
    };
    key(a).cmp(&key(b))
}

pub async fn ls(ctx: &Ctx, a: VolumeLsArgs) -> Result<i32> {
    let mut q = "/volumes".to_string();
    if let Some(f) = parse::filters(&a.filter)? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let v = ctx.client.get_json(&q).await?;
    let mut vols: Vec<Value> = v["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|x, y| {
        natural_cmp(
            x["Name"].as_str().unwrap_or(""),
            y["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = vols
        .iter()
        .map(|v| {
            let mut labels: Vec<String> = v["Labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            labels.sort();
            let size = v["UsageData"]["Size"].as_i64();
            json!({
                "Name": v["Name"], "Driver": v["Driver"], "Scope": v["Scope"],
                "Mountpoint": v["Mountpoint"], "Labels": labels.join(","),
                "Links": v["UsageData"]["RefCount"].as_i64().map(|n| n.to_string()).unwrap_or_else(|| "N/A".into()),
                "Size": size.filter(|s| *s >= 0).map(|s| human_size(s as f64)).unwrap_or_else(|| "N/A".into()),
                "~Label": v["Labels"].clone(),
            })
        })
        .collect();
    let header = json!({"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
        "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "~Label": {}});
    let fmt = if a.quiet {
        "{{.Name}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("table") => "table {{.Driver}}\t{{.Name}}".into(),
            Some(f) => f.to_string(),
        }
    };
    print!("{}", Format::parse(&fmt)?.render(&header, &rows)?);
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

pub async fn rm(ctx: &Ctx, a: VolumeRmArgs) -> Result<i32> {
    let client = ctx.client.clone();
    let force = a.force;
    each(&a.names, true, |n| {
        let client = client.clone();
        async move {
            client
                .delete(&format!("/volumes/{}?force={}", enc_path(&n), force as u8))
                .await
                .map(|_| ())
        }
    })
    .await
}

pub async fn prune(ctx: &Ctx, a: VolumePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !super::confirm(warning) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    // The `all` filter came with API 1.42; before it, prune removed every unused volume.
    if a.all && !crate::client::version_lt(&ctx.client.version().await?, "1.42") {
        filters.push("all=true".into());
    }
    let mut q = "/volumes/prune".to_string();
    if let Some(f) = parse::filters(&filters)? {
        q.push_str(&format!("?filters={}", enc(&f)));
    }
    let v = ctx.client.post_json(&q, None).await?;
    print_deleted("Deleted Volumes:", &v["VolumesDeleted"]);
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}

pub fn print_deleted(title: &str, list: &Value) {
    let items: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str())
        .collect();
    if !items.is_empty() {
        println!("{title}");
        for i in items {
            println!("{i}");
        }
        println!();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn natural_order() {
        let mut v = vec!["v10", "v2", "a", "v1"];
        v.sort_by(|a, b| super::natural_cmp(a, b));
        assert_eq!(v, vec!["a", "v1", "v2", "v10"]);
    }
}
