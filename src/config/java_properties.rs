//! Java `.properties` text, as `java.util.Properties.load` reads it: the one parser for a Kafka
//! Connect worker's properties file (`debezium`, config providers) and for a span-context column
//! (`router::span_context`).
//!
//! Owns the syntax only: `key=value`, `key: value` or `key value`; `#` and `!` comment lines; a
//! line ending in an odd number of backslashes continues on the next line (whose leading blanks
//! are dropped); the escapes `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\` before any other character
//! standing for that character. Entries come back in file order (a key given twice appears twice;
//! `Properties` keeps the last). It must not know what the keys mean, and does no I/O.

/// A `\u` escape that is not four hex digits of a character: `Properties.load` throws on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed \\u escape \\u{hex}")]
pub struct MalformedEscape {
    /// The (1-based) line the logical line holding it starts on.
    pub line: usize,
    /// The (up to four) characters after `\u`.
    pub hex: String,
}

/// The entries of `text`; a malformed `\u` escape is an error, as in Java.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, MalformedEscape> {
    parse_with(text, true)
}

/// The entries of `text`, reading a `\u` escape leniently: its up to four characters are taken as
/// hex when they parse as a character, and the escape is dropped when they do not. For text that
/// outboxd reads best effort (a span-context column), where one bad escape must not hide the
/// other entries.
pub fn parse_lenient(text: &str) -> Vec<(String, String)> {
    parse_with(text, false).unwrap_or_default()
}

fn parse_with(text: &str, strict: bool) -> Result<Vec<(String, String)>, MalformedEscape> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let first_line = i + 1;
        let start = lines[i].trim_start_matches(is_blank);
        i += 1;
        if start.is_empty() || start.starts_with('#') || start.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::new();
        let mut part = start;
        loop {
            let trailing = part.len() - part.trim_end_matches('\\').len();
            if trailing % 2 == 1 {
                logical.push_str(&part[..part.len() - 1]);
                match lines.get(i) {
                    Some(next) => {
                        part = next.trim_start_matches(is_blank);
                        i += 1;
                    }
                    None => break,
                }
            } else {
                logical.push_str(part);
                break;
            }
        }
        let (key, value) = split(&logical);
        let key = unescape(key, first_line, strict)?;
        let value = unescape(value, first_line, strict)?;
        out.push((key, value));
    }
    Ok(out)
}

/// The blanks `Properties` skips: space, tab, form feed.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Splits a logical line at the first unescaped `=`, `:` or blank.
fn split(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' | b'\x0c' => break,
            _ => i += 1,
        }
    }
    let i = i.min(bytes.len());
    let key = &line[..i];
    let mut rest = line[i..].trim_start_matches(is_blank);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches(is_blank);
    }
    (key, rest)
}

fn unescape(s: &str, line: usize, strict: bool) -> Result<String, MalformedEscape> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let c = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4 || !strict)
                    .and_then(char::from_u32);
                match c {
                    Some(c) => out.push(c),
                    None if strict => return Err(MalformedEscape { line, hex }),
                    None => {}
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn entries_come_in_file_order_with_duplicates() {
        let text = "b=1\r\na=2\n  # c=3 \\\nb = 3\n";
        assert_eq!(
            parse(text).unwrap(),
            pairs(&[("b", "1"), ("a", "2"), ("b", "3")])
        );
        assert_eq!(parse_lenient(text), parse(text).unwrap());
    }

    #[test]
    fn a_malformed_unicode_escape_is_an_error_only_when_strict() {
        let e = parse("x=1\ny=a\\u12\n").unwrap_err();
        assert_eq!(
            e,
            MalformedEscape {
                line: 2,
                hex: "12".into()
            }
        );
        assert_eq!(e.to_string(), "malformed \\u escape \\u12");
        assert!(parse("k=\\uzzzz").is_err());
        // Lenient: short hex still decodes, hex that is no character is dropped.
        assert_eq!(
            parse_lenient("x=1\ny=a\\u41\nz=\\uzzzzb\n"),
            pairs(&[("x", "1"), ("y", "aA"), ("z", "b")])
        );
    }
}
