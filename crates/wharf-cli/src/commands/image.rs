//! Image commands: images/ls, rmi, pull, push, tag, save, load, import, history, prune.

use super::{status, Ctx};
use crate::cli::*;
use crate::client::{enc, enc_path};
use crate::format::human::{ago, go_time_string, human_size, human_size_prec};
use crate::format::names::{ellipsis, familiar, short_id, split_tag};
use crate::format::Format;
use crate::opts::parse;
use crate::{stream, tty};
use anyhow::{Context as _, Result};
use serde_json::{json, Value};

/// A unix time as Go's `time.RFC3339` prints it in local time (`Z` for UTC).
fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_default()
}

pub fn image_header() -> Value {
    json!({
        "ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
        "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
        "Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE",
        "VirtualSize": "VIRTUAL SIZE",
    })
}

fn image_row(img: &Value, repo: &str, tag: &str, digest: &str, trunc: bool) -> Value {
    let id = img["Id"].as_str().unwrap_or("");
    let created = img["Created"].as_i64().unwrap_or(0);
    let size = img["Size"].as_f64().unwrap_or(0.0);
    let shared = img["SharedSize"].as_i64().unwrap_or(-1);
    let containers = img["Containers"].as_i64().unwrap_or(-1);
    json!({
        "ID": if trunc { short_id(id) } else { id.to_string() },
        "Repository": repo,
        "Tag": tag,
        "Digest": digest,
        "CreatedSince": if created == 0 { String::new() } else { ago(created) },
        "CreatedAt": go_time_string(created),
        "Size": human_size_prec(size, 3),
        "Containers": if containers == -1 { "N/A".to_string() } else { containers.to_string() },
        "SharedSize": if shared == -1 { "N/A".to_string() } else { human_size(shared as f64) },
        "UniqueSize": if shared == -1 { "N/A".to_string() } else { human_size(size - shared as f64) },
        // Deprecated, still a field of docker's image context (0B when the API has dropped it).
        "VirtualSize": human_size(img["VirtualSize"].as_f64().unwrap_or(0.0)),
    })
}

/// One row per repository:tag (and digest when asked), as docker's `imageFormat`.
pub fn image_rows(img: &Value, trunc: bool, need_digest: bool, digest_flag: bool) -> Vec<Value> {
    let tags: Vec<&str> = img["RepoTags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    let digests: Vec<&str> = img["RepoDigests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .collect();
    let dangling = (tags.is_empty() && digests.is_empty())
        || (tags == ["<none>:<none>"] && digests == ["<none>@<none>"]);
    if dangling {
        return vec![image_row(img, "<none>", "<none>", "<none>", trunc)];
    }
    let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
    for t in tags {
        let (repo, tag) = split_tag(t);
        let Some(tag) = tag else { continue };
        let repo = familiar(&repo);
        match repo_tags.iter_mut().find(|(r, _)| *r == repo) {
            Some((_, v)) => v.push(tag),
            None => repo_tags.push((repo, vec![tag])),
        }
    }
    let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
    for d in digests {
        let Some((repo, dg)) = d.split_once('@') else {
            continue;
        };
        let repo = familiar(repo);
        match repo_digests.iter_mut().find(|(r, _)| *r == repo) {
            Some((_, v)) => v.push(dg.to_string()),
            None => repo_digests.push((repo, vec![dg.to_string()])),
        }
    }
    let mut out = Vec::new();
    for (repo, tags) in &repo_tags {
        let pos = repo_digests.iter().position(|(r, _)| r == repo);
        let ds = pos.map(|p| repo_digests.remove(p).1).unwrap_or_default();
        let ds = if need_digest { ds } else { Vec::new() };
        for tag in tags {
            if ds.is_empty() {
                out.push(image_row(img, repo, tag, "<none>", trunc));
            }
            for d in &ds {
                out.push(image_row(img, repo, tag, d, trunc));
            }
        }
    }
    for (repo, ds) in &repo_digests {
        if digest_flag {
            for d in ds {
                out.push(image_row(img, repo, "<none>", d, trunc));
            }
        } else {
            out.push(image_row(img, repo, "<none>", "", trunc));
        }
    }
    out
}

pub async fn images(ctx: &Ctx, a: ImagesArgs) -> Result<i32> {
    if a.tree {
        return Err(status(125, "wharf: --tree is not supported yet"));
    }
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let mut q = format!("/images/json?all={}", a.all as u8);
    if let Some(f) = parse::filters(&filters)? {
        q.push_str(&format!("&filters={}", enc(&f)));
    }
    let list = ctx.client.get_json(&q).await?;
    let src = a.format.clone().unwrap_or_else(|| "table".into());
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else if src == "table" {
        if a.digests {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}".into()
        } else {
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}".into()
        }
    } else if src.starts_with("table") && a.digests && !src.contains("{{.Digest}}") {
        format!("{src}\t{{{{.Digest}}}}")
    } else {
        src
    };
    let need_digest = a.digests || fmt.contains("{{.Digest}}");
    let mut rows = Vec::new();
    for img in list.as_array().into_iter().flatten() {
        rows.extend(image_rows(img, !a.no_trunc, need_digest, a.digests));
    }
    // `-q` prints one line per row, as docker 28 does (an image with three tags: thrice).
    print!("{}", Format::parse(&fmt)?.render(&image_header(), &rows)?);
    Ok(0)
}

pub async fn rmi(ctx: &Ctx, a: RmiArgs) -> Result<i32> {
    let mut errs = Vec::new();
    for img in &a.images {
        let r = ctx
            .client
            .delete(&format!(
                "/images/{}?force={}&noprune={}",
                enc_path(img),
                a.force as u8,
                a.no_prune as u8
            ))
            .await;
        match r {
            Ok(v) => {
                for item in v.as_array().into_iter().flatten() {
                    if let Some(u) = item["Untagged"].as_str() {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => errs.push(format!("{e:#}")),
        }
    }
    if errs.is_empty() {
        Ok(0)
    } else {
        Err(status(1, errs.join("\n")))
    }
}

/// docker's normalised name: "busybox" → "docker.io/library/busybox:latest".
pub fn normalized(r: &str) -> String {
    let (repo, tag) = split_tag(r);
    let first = repo.split('/').next().unwrap_or("");
    let has_domain =
        repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let repo = if has_domain {
        repo
    } else if repo.contains('/') {
        format!("docker.io/{repo}")
    } else {
        format!("docker.io/library/{repo}")
    };
    if r.contains('@') {
        let d = r.split_once('@').map(|(_, d)| d).unwrap_or("");
        return format!("{repo}@{d}");
    }
    format!("{repo}:{}", tag.unwrap_or_else(|| "latest".into()))
}

pub async fn pull(ctx: &Ctx, a: PullArgs) -> Result<i32> {
    let (repo, tag) = split_tag(&a.image);
    if a.all_tags && (tag.is_some() || a.image.contains('@')) {
        return Err(status(1, "tag can't be used with --all-tags/-a"));
    }
    let mut q = match a.image.split_once('@') {
        // Every tag: `fromImage` without `tag`, as the docker CLI asks.
        None if a.all_tags => format!("/images/create?fromImage={}", enc(&repo)),
        Some((name, d)) => format!(
            "/images/create?fromImage={}",
            enc(&format!("{}@{d}", split_tag(name).0))
        ),
        None => format!(
            "/images/create?fromImage={}&tag={}",
            enc(&repo),
            enc(&tag.clone().unwrap_or_else(|| "latest".into()))
        ),
    };
    if tag.is_none() && !a.image.contains('@') && !a.quiet && !a.all_tags {
        println!("Using default tag: latest");
    }
    if let Some(p) = &a.platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let auth = crate::credentials::header_for_image(&ctx.config_dir, &a.image)?;
    let resp = ctx
        .client
        .request_with_headers("POST", &q, None, &[("X-Registry-Auth", &auth)])
        .await?;
    let mut out = std::io::stdout();
    let mut sink = std::io::sink();
    let w: &mut dyn std::io::Write = if a.quiet { &mut sink } else { &mut out };
    stream::show_progress(resp.into_body(), w, tty::stdout_is_tty()).await?;
    if a.all_tags {
        // The repository, without a tag, as docker prints it.
        let n = normalized(&a.image);
        println!("{}", n.rsplit_once(':').map_or(n.as_str(), |(r, _)| r));
    } else {
        println!("{}", normalized(&a.image));
    }
    Ok(0)
}

pub async fn push(ctx: &Ctx, a: PushArgs) -> Result<i32> {
    let (repo, tag) = split_tag(&a.image);
    let mut q = format!("/images/{}/push", enc_path(&repo));
    if !a.all_tags {
        q.push_str(&format!(
            "?tag={}",
            enc(&tag.clone().unwrap_or_else(|| "latest".into()))
        ));
    }
    if tag.is_none() && !a.all_tags && !a.quiet {
        println!("Using default tag: latest");
    }
    let auth = crate::credentials::header_for_image(&ctx.config_dir, &a.image)?;
    let resp = ctx
        .client
        .request_with_headers("POST", &q, None, &[("X-Registry-Auth", &auth)])
        .await?;
    let mut out = std::io::stdout();
    let mut sink = std::io::sink();
    let w: &mut dyn std::io::Write = if a.quiet { &mut sink } else { &mut out };
    stream::show_progress(resp.into_body(), w, tty::stdout_is_tty()).await?;
    if a.quiet {
        println!("{}", a.image);
    }
    Ok(0)
}

pub async fn tag(ctx: &Ctx, a: TagArgs) -> Result<i32> {
    let (repo, tag) = split_tag(&a.target);
    let mut q = format!("/images/{}/tag?repo={}", enc_path(&a.source), enc(&repo));
    if let Some(t) = tag {
        q.push_str(&format!("&tag={}", enc(&t)));
    }
    ctx.client.post_json(&q, None).await?;
    Ok(0)
}

pub async fn save(ctx: &Ctx, a: SaveArgs) -> Result<i32> {
    let names: Vec<String> = a
        .images
        .iter()
        .map(|n| format!("names={}", enc(n)))
        .collect();
    super::container::download_to(
        ctx,
        &format!("/images/get?{}", names.join("&")),
        a.output.as_deref(),
    )
    .await?;
    Ok(0)
}

pub async fn load(ctx: &Ctx, a: LoadArgs) -> Result<i32> {
    let body = match &a.input {
        Some(f) => crate::client::reader_body(
            tokio::fs::File::open(f)
                .await
                .with_context(|| format!("open {f}"))?,
        ),
        None => {
            if tty::stdin_is_tty() {
                return Err(status(1, "requested load from stdin, but stdin is empty"));
            }
            crate::client::reader_body(tokio::io::stdin())
        }
    };
    let resp = ctx
        .client
        .request(
            "POST",
            // As docker: the per-layer bars only for a terminal.
            &format!(
                "/images/load?quiet={}",
                (a.quiet || !tty::stdout_is_tty()) as u8
            ),
            Some((body, "application/x-tar")),
        )
        .await?;
    let mut out = std::io::stdout();
    stream::show_progress(resp.into_body(), &mut out, tty::stdout_is_tty()).await?;
    Ok(0)
}

pub async fn import(ctx: &Ctx, a: ImportArgs) -> Result<i32> {
    let mut q = String::from("/images/create?");
    let is_url = a.source.starts_with("http://") || a.source.starts_with("https://");
    q.push_str(&format!(
        "fromSrc={}",
        enc(if is_url { &a.source } else { "-" })
    ));
    if let Some(r) = &a.reference {
        let (repo, tag) = split_tag(r);
        q.push_str(&format!("&repo={}", enc(&repo)));
        if let Some(t) = tag {
            q.push_str(&format!("&tag={}", enc(&t)));
        }
    }
    if let Some(m) = &a.message {
        q.push_str(&format!("&message={}", enc(m)));
    }
    for c in &a.change {
        q.push_str(&format!("&changes={}", enc(c)));
    }
    if let Some(p) = &a.platform {
        q.push_str(&format!("&platform={}", enc(p)));
    }
    let body = if is_url {
        None
    } else if a.source == "-" {
        Some((
            crate::client::reader_body(tokio::io::stdin()),
            "application/x-tar",
        ))
    } else {
        let f = tokio::fs::File::open(&a.source)
            .await
            .with_context(|| format!("open {}", a.source))?;
        Some((crate::client::reader_body(f), "application/x-tar"))
    };
    let resp = ctx.client.request("POST", &q, body).await?;
    let mut out = std::io::stdout();
    stream::show_progress(resp.into_body(), &mut out, tty::stdout_is_tty()).await?;
    Ok(0)
}

pub async fn history(ctx: &Ctx, a: HistoryArgs) -> Result<i32> {
    let v = ctx
        .client
        .get_json(&format!("/images/{}/history", enc_path(&a.image)))
        .await?;
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("");
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
            let size = h["Size"].as_f64().unwrap_or(0.0);
            json!({
                "ID": if id == "<missing>" || !trunc { id.to_string() } else { short_id(id) },
                "CreatedSince": if a.human { ago(created) } else {
                    rfc3339(created)
                },
                "CreatedAt": rfc3339(created),
                "CreatedBy": if trunc { ellipsis(&by, 45) } else { by },
                "Size": if a.human { human_size_prec(size, 3) } else { (size as i64).to_string() },
                "Comment": h["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    // docker titles the column "CREATED AT" when it shows times rather than "2 hours ago".
    let header = json!({"ID": "IMAGE", "CreatedSince": if a.human { "CREATED" } else { "CREATED AT" }, "CreatedAt": "CREATED AT",
        "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"});
    let fmt = if a.quiet {
        "{{.ID}}".to_string()
    } else {
        match a.format.as_deref() {
            None | Some("table") => {
                "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
            }
            Some(f) => f.to_string(),
        }
    };
    print!("{}", Format::parse(&fmt)?.render(&header, &rows)?);
    Ok(0)
}

pub async fn prune(ctx: &Ctx, a: ImagePruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !a.force && !super::confirm(warning) {
        return Ok(0);
    }
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", !a.all));
    let f = parse::filters(&filters)?.unwrap_or_default();
    let v = ctx
        .client
        .post_json(&format!("/images/prune?filters={}", enc(&f)), None)
        .await?;
    let items = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        println!("Deleted Images:");
        for i in items {
            if let Some(u) = i["Untagged"].as_str() {
                println!("untagged: {u}");
            }
            if let Some(d) = i["Deleted"].as_str() {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(normalized("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalized("me/app:1"), "docker.io/me/app:1");
        assert_eq!(normalized("localhost:5000/x"), "localhost:5000/x:latest");
    }

    #[test]
    fn rows_per_tag() {
        let img = json!({"Id": "sha256:abcdef0123456789", "RepoTags": ["busybox:latest", "busybox:1", "docker.io/library/alpine:3"],
            "RepoDigests": [], "Created": 0, "Size": 4_260_000});
        let rows = image_rows(&img, true, false, false);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["Repository"], "busybox");
        assert_eq!(rows[1]["Tag"], "1");
        assert_eq!(rows[2]["Repository"], "alpine");
        assert_eq!(rows[0]["ID"], "abcdef012345");
        assert_eq!(rows[0]["Size"], "4.26MB");
        let dangling = json!({"Id": "sha256:1", "RepoTags": [], "RepoDigests": [], "Size": 0});
        assert_eq!(
            image_rows(&dangling, true, false, false)[0]["Tag"],
            "<none>"
        );
    }
}
