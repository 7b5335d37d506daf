//! System-wide commands: inspect (any object), version, info, events, df, system prune.

use super::{status, Ctx};
use crate::cli::*;
use crate::client::{daemon_error, enc, enc_path};
use crate::format::human::human_size;
use crate::format::{json as fjson, template::Template, Format};
use crate::opts::parse;
use anyhow::Result;
use bytes::Bytes;
use serde_json::{json, Value};

/// Where each kind of object is inspected.
fn inspect_path(kind: &str, name: &str, size: bool) -> String {
    match kind {
        "container" => format!("/containers/{}/json?size={}", enc_path(name), size as u8),
        "image" => format!("/images/{}/json", enc_path(name)),
        "volume" => format!("/volumes/{}", enc_path(name)),
        _ => format!("/networks/{}", enc_path(name)),
    }
}

async fn fetch_raw(ctx: &Ctx, kind: &str, name: &str, size: bool) -> Result<Bytes> {
    let r = ctx.client.get(&inspect_path(kind, name, size)).await?;
    crate::client::read_body(r).await
}

/// Prints the objects found as docker does: one indented JSON array, or the template per
/// object; errors after, exit 1 when any name was not found.
fn print_inspected(found: &[Bytes], format: Option<&str>) -> Result<()> {
    match format {
        None | Some("") => {
            let items: Vec<&[u8]> = found.iter().map(|b| &b[..]).collect();
            println!("{}", fjson::indent_array(&items));
        }
        _ => {
            let f = format.unwrap_or("");
            let src = if f == "json" { "{{json .}}" } else { f };
            let src = src.replace("\\t", "\t").replace("\\n", "\n");
            // docker 28: a template that does not parse is a usage error (64) here.
            let t = Template::parse(&src)
                .map_err(|e| status(64, format!("template parsing error: {e}")))?;
            for b in found {
                let v: Value = serde_json::from_slice(b)?;
                let s = t
                    .execute(&v)
                    .map_err(|e| status(1, format!("template parsing error: {e}")))?;
                println!("{s}");
            }
        }
    }
    Ok(())
}

pub async fn inspect_typed(
    ctx: &Ctx,
    kind: &str,
    names: Vec<String>,
    format: Option<String>,
    size: bool,
) -> Result<i32> {
    let mut found = Vec::new();
    let mut errs = Vec::new();
    for n in &names {
        match fetch_raw(ctx, kind, n, size).await {
            Ok(b) => found.push(b),
            Err(e) if daemon_error(&e).is_some() => errs.push(format!("{e:#}")),
            Err(e) => return Err(e),
        }
    }
    print_inspected(&found, format.as_deref())?;
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(status(1, errs.join("\n")))
    }
}

pub async fn inspect(ctx: &Ctx, a: InspectArgs) -> Result<i32> {
    let kinds: Vec<&str> = match a.kind.as_deref() {
        None | Some("") => vec!["container", "image", "network", "volume"],
        Some(k @ ("container" | "image" | "network" | "volume")) => vec![k],
        Some(k) => {
            return Err(status(
                1,
                format!("\"{k}\" is not a valid value for --type"),
            ))
        }
    };
    if a.kind.is_some() {
        return inspect_typed(ctx, kinds[0], a.names, a.format, a.size).await;
    }
    let mut found = Vec::new();
    let mut errs = Vec::new();
    'names: for n in &a.names {
        for k in &kinds {
            match fetch_raw(ctx, k, n, a.size).await {
                Ok(b) => {
                    found.push(b);
                    continue 'names;
                }
                Err(e) if daemon_error(&e).is_some() => {}
                Err(e) => return Err(e),
            }
        }
        errs.push(format!("Error: No such object: {n}"));
    }
    print_inspected(&found, a.format.as_deref())?;
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(status(1, errs.join("\n")))
    }
}

fn client_version() -> Value {
    json!({
        "Platform": {"Name": ""},
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": crate::client::CLIENT_API_VERSION,
        "DefaultAPIVersion": crate::client::CLIENT_API_VERSION,
        "GoVersion": "n/a (Rust)",
        "GitCommit": option_env!("WHARF_GIT_COMMIT").unwrap_or("unknown"),
        "BuildTime": "",
        "Os": std::env::consts::OS,
        "Arch": if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH },
        "Context": "default",
    })
}

const VERSION_TEMPLATE: &str = "Client:{{if ne .Client.Platform.Name \"\"}} {{.Client.Platform.Name}}{{end}}
 Version:           {{.Client.Version}}
 API version:       {{.Client.APIVersion}}{{if ne .Client.APIVersion .Client.DefaultAPIVersion}} (downgraded from {{.Client.DefaultAPIVersion}}){{end}}
 Go version:        {{.Client.GoVersion}}
 Git commit:        {{.Client.GitCommit}}
 Built:             {{.Client.BuildTime}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           {{.Client.Context}}
{{- if .Server}}{{with .Server}}

Server:{{if ne .Platform.Name \"\"}} {{.Platform.Name}}{{end}}
{{- range $component := .Components}}
 {{$component.Name}}:
  {{- if eq $component.Name \"Engine\" }}
  Version:          {{.Version}}
  API version:      {{index .Details \"ApiVersion\"}} (minimum version {{index .Details \"MinAPIVersion\"}})
  Go version:       {{index .Details \"GoVersion\"}}
  Git commit:       {{index .Details \"GitCommit\"}}
  Built:            {{index .Details \"BuildTime\"}}
  OS/Arch:          {{index .Details \"Os\"}}/{{index .Details \"Arch\"}}
  Experimental:     {{index .Details \"Experimental\"}}
  {{- else }}
  Version:          {{$component.Version}}
  {{- range $key, $value := $component.Details }}
  {{$key}}:{{pad \"\" 1 0}}{{$value}}
  {{- end }}
  {{- end }}
{{- end }}
{{- end }}{{- end }}
";

pub async fn version(ctx: &Ctx, a: FormatOnly) -> Result<i32> {
    let mut cv = client_version();
    let api = ctx.client.version().await;
    let mut server = Value::Null;
    let mut err = None;
    match api {
        Ok(v) => {
            cv["APIVersion"] = v.into();
            match ctx.client.get_json("/version").await {
                Ok(mut s) => {
                    // docker decodes into typed structs: absent details print as "".
                    for c in s["Components"].as_array_mut().into_iter().flatten() {
                        if c["Name"] == "Engine" {
                            for k in [
                                "ApiVersion",
                                "MinAPIVersion",
                                "GoVersion",
                                "GitCommit",
                                "BuildTime",
                                "Os",
                                "Arch",
                                "Experimental",
                            ] {
                                if c["Details"].get(k).is_none() {
                                    c["Details"][k] = "".into();
                                }
                            }
                        }
                    }
                    server = s
                }
                Err(e) => err = Some(e),
            }
        }
        Err(e) => {
            cv["APIVersion"] = crate::client::CLIENT_API_VERSION.into();
            err = Some(e);
        }
    }
    let data = json!({"Client": cv, "Server": server});
    let out = match a.format.as_deref() {
        Some("json") => serde_json::to_string(&data)? + "\n",
        Some(f) => {
            let t = Template::parse(&f.replace("\\n", "\n").replace("\\t", "\t")).map_err(|e| {
                let e = e
                    .to_string()
                    .replacen("template: :", "template: version:", 1);
                status(64, format!("template parsing error: {e}"))
            })?;
            t.execute(&data)? + "\n"
        }
        None => Template::parse(VERSION_TEMPLATE)?.execute(&data)?,
    };
    print!("{out}");
    match err {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

pub async fn info(ctx: &Ctx, a: FormatOnly) -> Result<i32> {
    let v = ctx.client.get_json("/info").await?;
    if let Some(f) = a.format.as_deref() {
        let src = if f == "json" { "{{json .}}" } else { f };
        let t = Template::parse(&src.replace("\\n", "\n").replace("\\t", "\t"))
            .map_err(|e| status(64, format!("template parsing error: {e}")))?;
        println!("{}", t.execute(&v)?);
        return Ok(0);
    }
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let n = |k: &str| v[k].as_i64().unwrap_or(0);
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!(" Context:    default");
    println!(" Debug Mode: false");
    println!();
    println!("Server:");
    println!(" Containers: {}", n("Containers"));
    println!("  Running: {}", n("ContainersRunning"));
    println!("  Paused: {}", n("ContainersPaused"));
    println!("  Stopped: {}", n("ContainersStopped"));
    println!(" Images: {}", n("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    for pair in v["DriverStatus"].as_array().into_iter().flatten() {
        println!(
            "  {}: {}",
            pair[0].as_str().unwrap_or(""),
            pair[1].as_str().unwrap_or("")
        );
    }
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    let runtimes: Vec<String> = v["Runtimes"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    println!(" Runtimes: {}", runtimes.join(" "));
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Init Binary: {}", s("InitBinary"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", n("NCPU"));
    println!(
        " Total Memory: {}",
        crate::format::human::bytes_size(v["MemTotal"].as_f64().unwrap_or(0.0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Debug Mode: {}", v["Debug"].as_bool().unwrap_or(false));
    println!(
        " Experimental: {}",
        v["ExperimentalBuild"].as_bool().unwrap_or(false)
    );
    println!(
        " Live Restore Enabled: {}",
        v["LiveRestoreEnabled"].as_bool().unwrap_or(false)
    );
    println!();
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("{w}");
        }
    }
    Ok(0)
}

/// One event line as docker prints it.
/// An event as docker's templates see it: its Go field names (`.Status`, `.ID`, `.From`,
/// `.Scope`, `.Time`, `.TimeNano`) beside the JSON names (`status`, `id`, ...) that
/// `{{json .}}` prints (hidden `~` keys are read by name only).
fn event_context(mut e: Value) -> Value {
    if let Some(o) = e.as_object_mut() {
        for (go, js) in [
            ("Status", "status"),
            ("ID", "id"),
            ("From", "from"),
            ("Scope", "scope"),
            ("Time", "time"),
            ("TimeNano", "timeNano"),
        ] {
            let v = o.get(js).cloned().unwrap_or(match go {
                "Time" | "TimeNano" => Value::from(0),
                _ => Value::from(""),
            });
            o.insert(format!("~{go}"), v);
        }
    }
    e
}

/// An event as docker's `{{json .}}` prints its `events.Message`: fields in struct order,
/// the deprecated `status`/`id`/`from` and zero `scope`/`time`/`timeNano` left out.
fn event_json(e: &Value) -> String {
    let q = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let mut parts = Vec::new();
    for k in ["status", "id", "from"] {
        if e[k].as_str().is_some_and(|s| !s.is_empty()) {
            parts.push(format!("\"{k}\":{}", q(&e[k])));
        }
    }
    let s = |v: &Value| q(&Value::String(v.as_str().unwrap_or("").into()));
    parts.push(format!("\"Type\":{}", s(&e["Type"])));
    parts.push(format!("\"Action\":{}", s(&e["Action"])));
    let attrs = match &e["Actor"]["Attributes"] {
        Value::Object(m) => q(&Value::Object(m.clone())),
        _ => "null".into(),
    };
    parts.push(format!(
        "\"Actor\":{{\"ID\":{},\"Attributes\":{attrs}}}",
        s(&e["Actor"]["ID"])
    ));
    if e["scope"].as_str().is_some_and(|s| !s.is_empty()) {
        parts.push(format!("\"scope\":{}", q(&e["scope"])));
    }
    for k in ["time", "timeNano"] {
        if e[k].as_i64().is_some_and(|n| n != 0) {
            parts.push(format!("\"{k}\":{}", e[k]));
        }
    }
    format!("{{{}}}", parts.join(","))
}

pub fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or(e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let t = chrono::DateTime::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .unwrap_or_default()
        .with_timezone(&chrono::Local);
    let ts = t.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string();
    let ts = if t.offset().local_minus_utc() == 0 {
        ts.trim_end_matches("+00:00").to_string() + "Z"
    } else {
        ts
    };
    let kind = e["Type"].as_str().unwrap_or("");
    let action = e["Action"].as_str().unwrap_or("");
    let id = e["Actor"]["ID"].as_str().unwrap_or("");
    let mut line = format!("{ts} {kind} {action} {id}");
    if let Some(attrs) = e["Actor"]["Attributes"].as_object() {
        if !attrs.is_empty() {
            let mut kv: Vec<String> = attrs
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            kv.sort();
            line.push_str(&format!(" ({})", kv.join(", ")));
        }
    }
    line
}

pub async fn events(ctx: &Ctx, a: EventsArgs) -> Result<i32> {
    let now = chrono::Utc::now();
    let mut q = "/events?".to_string();
    if let Some(s) = &a.since {
        q.push_str(&format!("since={}&", parse::timestamp(s, now)?));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("until={}&", parse::timestamp(u, now)?));
    }
    if let Some(f) = parse::filters(&a.filter)? {
        q.push_str(&format!("filters={}&", enc(&f)));
    }
    let q = q.trim_end_matches(['&', '?']).to_string();
    let tmpl = match a.format.as_deref() {
        None => None,
        Some("json") => Some(Template::parse("{{json .}}")?),
        Some(f) => Some(
            Template::parse(&f.replace("\\n", "\n").replace("\\t", "\t"))
                .map_err(|e| status(64, format!("Error parsing format: {e}")))?,
        ),
    };
    // The whole event as JSON: docker's struct order, not our template's sorted keys.
    let whole = a
        .format
        .as_deref()
        .is_some_and(|f| f == "json" || f.replace(' ', "") == "{{json.}}");
    let resp = ctx.client.get(&q).await?;
    crate::stream::json_lines(resp.into_body(), |e| {
        use std::io::Write;
        let line = match &tmpl {
            Some(_) if whole => event_json(&e),
            Some(t) => t.execute(&event_context(e.clone()))?,
            None => event_line(&e),
        };
        let mut o = std::io::stdout().lock();
        writeln!(o, "{line}")?;
        o.flush()?;
        Ok(true)
    })
    .await?;
    Ok(0)
}

/// `system df -v`: docker's four sections, each a table.
fn df_verbose(
    images: &[Value],
    containers: &[Value],
    volumes: &[Value],
    cache: &[Value],
) -> Result<String> {
    use super::container::{ps_header, ps_row};
    use super::image::{image_header, image_rows};
    let mut out = String::from("Images space usage:\n\n");
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|i| {
            // docker shows an image once, by its first tag.
            let mut i = i.clone();
            if let Some(tags) = i["RepoTags"].as_array_mut() {
                tags.truncate(1);
            }
            image_rows(&i, true, false, false)
        })
        .collect();
    out.push_str(&Format::parse(
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
    )?
    .render(&image_header(), &rows)?);
    out.push_str("\nContainers space usage:\n\n");
    let rows: Vec<Value> = containers
        .iter()
        .map(|c| {
            let mut r = ps_row(c, true);
            // Here SIZE is the writable layer alone.
            r["Size"] =
                crate::format::human::human_size_prec(c["SizeRw"].as_f64().unwrap_or(0.0), 3)
                    .into();
            r
        })
        .collect();
    out.push_str(&Format::parse(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
    )?
    .render(&ps_header(), &rows)?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    let rows: Vec<Value> = volumes
        .iter()
        .map(|v| {
            let size = v["UsageData"]["Size"].as_f64().unwrap_or(-1.0);
            json!({
                "Name": v["Name"],
                "Links": v["UsageData"]["RefCount"].as_i64().unwrap_or(0).to_string(),
                "Size": if size < 0.0 { "N/A".to_string() } else { human_size(size) },
            })
        })
        .collect();
    out.push_str(
        &Format::parse("table {{.Name}}\t{{.Links}}\t{{.Size}}")?.render(
            &json!({"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}),
            &rows,
        )?,
    );
    let total: f64 = cache
        .iter()
        .filter(|c| c["Shared"] != true)
        .map(|c| c["Size"].as_f64().unwrap_or(0.0))
        .sum();
    out.push_str(&format!("\nBuild cache usage: {}\n\n", human_size(total)));
    let since = |v: &Value| -> String {
        v.as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| crate::format::human::ago(t.timestamp()))
            .unwrap_or_default()
    };
    // docker's order: least recently used first (never used before), then by id.
    let mut sorted: Vec<&Value> = cache.iter().collect();
    sorted.sort_by_key(|c| {
        let used = c["LastUsedAt"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_nanos_opt().unwrap_or(0));
        (used, c["ID"].as_str().unwrap_or("").to_string())
    });
    // docker's columns: the id cut to 12 (`*` when in use), sizes to 3 digits.
    let cache_rows: Vec<Value> = sorted
        .into_iter()
        .map(|c| {
            let id = c["ID"].as_str().unwrap_or("");
            let id = id.split_once(':').map_or(id, |(_, r)| r);
            let mut id: String = id.chars().take(12).collect();
            if c["InUse"] == true {
                id.push('*');
            }
            json!({
                "ID": id,
                "CacheType": c["Type"].as_str().unwrap_or(""),
                "Size": crate::format::human::human_size_prec(c["Size"].as_f64().unwrap_or(0.0), 3),
                "CreatedSince": since(&c["CreatedAt"]),
                "LastUsedSince": since(&c["LastUsedAt"]),
                "UsageCount": c["UsageCount"].as_i64().unwrap_or(0).to_string(),
                "Shared": (c["Shared"] == true).to_string(),
            })
        })
        .collect();
    out.push_str(&Format::parse(
        "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
    )?
    .render(
        &json!({"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE",
                "CreatedSince": "CREATED", "LastUsedSince": "LAST USED",
                "UsageCount": "USAGE", "Shared": "SHARED"}),
        &cache_rows,
    )?);
    Ok(out)
}

pub async fn df(ctx: &Ctx, a: DfArgs) -> Result<i32> {
    let v = ctx.client.get_json("/system/df").await?;
    let images = v["Images"].as_array().cloned().unwrap_or_default();
    let containers = v["Containers"].as_array().cloned().unwrap_or_default();
    let volumes = v["Volumes"].as_array().cloned().unwrap_or_default();
    let cache = v["BuildCache"].as_array().cloned().unwrap_or_default();
    let pct = |r: f64, t: f64| {
        if t > 0.0 {
            format!(" ({}%)", (r * 100.0 / t) as i64)
        } else {
            String::new()
        }
    };
    let img_total: f64 = v["LayersSize"].as_f64().unwrap_or_else(|| {
        images
            .iter()
            .map(|i| i["Size"].as_f64().unwrap_or(0.0))
            .sum()
    });
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    // As docker: what images in use hold beyond their shared layers is not reclaimable.
    let img_used: f64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) != 0)
        .filter_map(|i| {
            let size = i["VirtualSize"].as_f64().or(i["Size"].as_f64())?;
            let shared = i["SharedSize"].as_f64().unwrap_or(-1.0);
            (size >= 0.0 && shared >= 0.0).then_some(size - shared)
        })
        .sum();
    let img_recl = (img_total - img_used).max(0.0);
    let c_total: f64 = containers
        .iter()
        .map(|c| c["SizeRw"].as_f64().unwrap_or(0.0))
        .sum();
    let c_active = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let c_recl: f64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| c["SizeRw"].as_f64().unwrap_or(0.0))
        .sum();
    let v_total: f64 = volumes
        .iter()
        .map(|x| x["UsageData"]["Size"].as_f64().unwrap_or(0.0).max(0.0))
        .sum();
    let v_active = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0)
        .count();
    let v_recl: f64 = volumes
        .iter()
        .filter(|x| x["UsageData"]["RefCount"].as_i64().unwrap_or(0) == 0)
        .map(|x| x["UsageData"]["Size"].as_f64().unwrap_or(0.0).max(0.0))
        .sum();
    // As docker: shared records are not counted; in-use ones are not reclaimable.
    let b_size = |in_use_only: bool| -> f64 {
        cache
            .iter()
            .filter(|c| c["Shared"] != true && (!in_use_only || c["InUse"] == true))
            .map(|c| c["Size"].as_f64().unwrap_or(0.0))
            .sum()
    };
    let b_total = b_size(false);
    let b_recl = b_total - b_size(true);
    let b_active = cache.iter().filter(|c| c["InUse"] == true).count();
    let rows = vec![
        json!({"Type": "Images", "TotalCount": images.len().to_string(), "Active": img_active.to_string(),
               "Size": human_size(img_total), "Reclaimable": format!("{}{}", human_size(img_recl), pct(img_recl, img_total))}),
        json!({"Type": "Containers", "TotalCount": containers.len().to_string(), "Active": c_active.to_string(),
               "Size": human_size(c_total), "Reclaimable": format!("{}{}", human_size(c_recl), pct(c_recl, c_total))}),
        json!({"Type": "Local Volumes", "TotalCount": volumes.len().to_string(), "Active": v_active.to_string(),
               "Size": human_size(v_total), "Reclaimable": format!("{}{}", human_size(v_recl), pct(v_recl, v_total))}),
        json!({"Type": "Build Cache", "TotalCount": cache.len().to_string(), "Active": b_active.to_string(),
               "Size": human_size(b_total), "Reclaimable": human_size(b_recl)}),
    ];
    if a.verbose {
        if a.format.is_some() {
            return Err(status(
                125,
                "wharf: system df --verbose --format is not supported yet",
            ));
        }
        print!("{}", df_verbose(&images, &containers, &volumes, &cache)?);
        return Ok(0);
    }
    let header = json!({"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"});
    let fmt = a
        .format
        .clone()
        .filter(|f| f != "table")
        .unwrap_or_else(|| {
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into()
        });
    print!("{}", Format::parse(&fmt)?.render(&header, &rows)?);
    Ok(0)
}

pub async fn prune(ctx: &Ctx, a: SystemPruneArgs) -> Result<i32> {
    let mut warn = String::from("WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n");
    if a.volumes {
        warn.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if a.all {
        warn.push_str("  - all images without at least one container associated to them\n");
    } else {
        warn.push_str("  - all dangling images\n");
    }
    warn.push_str("  - unused build cache\n");
    if !a.force && !super::confirm(&warn) {
        return Ok(0);
    }
    let f = parse::filters(&a.filter)?
        .map(|f| format!("?filters={}", enc(&f)))
        .unwrap_or_default();
    let mut total = 0f64;
    let c = ctx
        .client
        .post_json(&format!("/containers/prune{f}"), None)
        .await?;
    super::volume::print_deleted("Deleted Containers:", &c["ContainersDeleted"]);
    total += c["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    match ctx
        .client
        .post_json(&format!("/networks/prune{f}"), None)
        .await
    {
        Ok(n) => super::volume::print_deleted("Deleted Networks:", &n["NetworksDeleted"]),
        Err(e) if daemon_error(&e).is_some_and(|d| d.status == 404) => {}
        Err(e) => return Err(e),
    }
    if a.volumes {
        let v = ctx
            .client
            .post_json(&format!("/volumes/prune{f}"), None)
            .await?;
        super::volume::print_deleted("Deleted Volumes:", &v["VolumesDeleted"]);
        total += v["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    }
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", !a.all));
    let fi = parse::filters(&filters)?.unwrap_or_default();
    let i = ctx
        .client
        .post_json(&format!("/images/prune?filters={}", enc(&fi)), None)
        .await?;
    let items = i["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for it in items {
            if let Some(u) = it["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = it["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    total += i["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println!("Total reclaimed space: {}", human_size(total));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines() {
        let e = json!({"Type": "container", "Action": "start", "Actor": {"ID": "abc", "Attributes": {"name": "x", "image": "busybox"}}, "timeNano": 0});
        let l = event_line(&e);
        assert!(
            l.ends_with(" container start abc (image=busybox, name=x)"),
            "{l}"
        );
    }

    #[test]
    fn version_template_parses() {
        let t = Template::parse(VERSION_TEMPLATE).unwrap();
        let out = t
            .execute(&json!({"Client": client_version(), "Server": Value::Null}))
            .unwrap();
        assert!(out.starts_with("Client:\n Version:           "), "{out}");
    }
}
