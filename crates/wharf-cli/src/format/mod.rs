//! Output formatting: tables aligned like docker's tabwriter (`table`), Go templates for
//! `--format` (`template`), and human sizes and times (`human`).

pub mod human;
pub mod json;
pub mod names;
pub mod table;
pub mod template;

use anyhow::{Context as _, Result};
use serde_json::Value;

/// A `--format` value as docker reads it: "table ..." prefix, `\t`/`\n` escapes, "json".
pub struct Format {
    pub table: bool,
    pub template: template::Template,
}

impl Format {
    /// Parses a user format (or a default table format).
    pub fn parse(src: &str) -> Result<Format> {
        let (table, body) = if src == "json" {
            (false, "{{json .}}".to_string())
        } else if let Some(rest) = src.strip_prefix("table") {
            (true, rest.to_string())
        } else {
            (false, src.to_string())
        };
        let body = body
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let mut template = template::Template::parse(&body).context("template parsing error")?;
        template.row_context = true;
        Ok(Format { table, template })
    }

    /// Renders rows (and the header when a table) to a string as docker prints it.
    pub fn render(&self, header: &Value, rows: &[Value]) -> Result<String> {
        let mut buf = String::new();
        for r in rows {
            buf.push_str(&self.template.execute(r).context("template parsing error")?);
            buf.push('\n');
        }
        if !self.table {
            return Ok(buf);
        }
        let mut all = self.template.execute_header(header).unwrap_or_default();
        all.push('\n');
        all.push_str(&buf);
        Ok(table::align(&all))
    }
}
