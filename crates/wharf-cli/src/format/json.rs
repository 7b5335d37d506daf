//! JSON as docker prints `inspect`: the daemon's own field order kept, indented by four
//! spaces like Go's `json.MarshalIndent`, without HTML escapes (docker 28 prints `<`, `>`,
//! `&` as they are).

/// What Go's `json.Marshal` adds to a compact JSON text: `<`, `>`, `&`, U+2028 and U+2029
/// escaped (they only ever occur inside strings).
pub fn go_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// Indents the raw JSON texts `items` as one Go-style array.
pub fn indent_array(items: &[&[u8]]) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    let mut out = String::from("[\n");
    for (i, it) in items.iter().enumerate() {
        out.push_str("    ");
        indent_into(&mut out, it, 1);
        if i + 1 < items.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push(']');
    out
}

/// Re-indents one raw JSON text (already valid) starting at `depth`.
pub fn indent_into(out: &mut String, raw: &[u8], depth: usize) {
    let text = String::from_utf8_lossy(raw);
    let chars: Vec<char> = text.chars().collect();
    let mut depth = depth;
    let mut i = 0;
    let newline = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("    ");
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                out.push('"');
                i += 1;
                while i < chars.len() {
                    let d = chars[i];
                    match d {
                        // docker 28 prints `<`, `>`, `&` as they are, also when the daemon
                        // (dockerd, Go's encoder) sent them escaped.
                        '\\' if chars.get(i + 1) == Some(&'u')
                            && html_escape(&chars[i + 2..chars.len().min(i + 6)]).is_some() =>
                        {
                            out.push(html_escape(&chars[i + 2..i + 6]).unwrap_or('?'));
                            i += 6;
                            continue;
                        }
                        '\\' => {
                            out.push('\\');
                            if let Some(n) = chars.get(i + 1) {
                                out.push(*n);
                            }
                            i += 2;
                            continue;
                        }
                        '"' => {
                            out.push('"');
                            break;
                        }
                        '\u{2028}' => out.push_str("\\u2028"),
                        '\u{2029}' => out.push_str("\\u2029"),
                        d => out.push(d),
                    }
                    i += 1;
                }
            }
            '{' | '[' => {
                // Empty containers stay compact.
                let close = if c == '{' { '}' } else { ']' };
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if chars.get(j) == Some(&close) {
                    out.push(c);
                    out.push(close);
                    i = j;
                } else {
                    out.push(c);
                    depth += 1;
                    newline(out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
        i += 1;
    }
}

/// The character of a `\uXXXX` escape Go's encoder uses for HTML safety, if it is one.
fn html_escape(hex: &[char]) -> Option<char> {
    let h: String = hex.iter().collect::<String>().to_ascii_lowercase();
    match h.as_str() {
        "003c" => Some('<'),
        "003e" => Some('>'),
        "0026" => Some('&'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let a = br#"{"Id":"x","Args":[],"Config":{"Labels":{},"Cmd":["a","<b>"]},"N":1}"#;
        let got = indent_array(&[a]);
        let want = "[\n    {\n        \"Id\": \"x\",\n        \"Args\": [],\n        \"Config\": {\n            \"Labels\": {},\n            \"Cmd\": [\n                \"a\",\n                \"<b>\"\n            ]\n        },\n        \"N\": 1\n    }\n]";
        assert_eq!(got, want);
        assert_eq!(indent_array(&[]), "[]");
        // dockerd's escapes are undone, as docker 28 prints them.
        assert_eq!(
            indent_array(&[br#"["a\u003e\u00262","\n"]"#]),
            "[\n    [\n        \"a>&2\",\n        \"\\n\"\n    ]\n]"
        );
    }
}
