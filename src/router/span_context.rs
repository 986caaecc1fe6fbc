//! `tracing.span.context.field`: a column holding a serialized span context in Java properties
//! text (what Debezium's and Quarkus' outbox helpers write: `traceparent=00-…-…-01`, optionally
//! `tracestate=…`), forwarded as the W3C `traceparent` and `tracestate` record headers.

/// The W3C trace context found in a span-context column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

/// Reads the span context; `Ok(None)` when the text holds no `traceparent`, `Err` when it holds
/// one that is not a valid W3C traceparent (version 00).
pub fn trace_context(text: &str) -> Result<Option<TraceContext>, String> {
    let props = parse_properties(text);
    let get = |key: &str| {
        props
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
    };
    let Some(traceparent) = get("traceparent") else {
        return Ok(None);
    };
    check_traceparent(&traceparent)?;
    Ok(Some(TraceContext {
        traceparent,
        tracestate: get("tracestate").filter(|s| !s.is_empty()),
    }))
}

/// `00-<32 hex trace id, not all 0>-<16 hex span id, not all 0>-<2 hex flags>`, lower case.
fn check_traceparent(tp: &str) -> Result<(), String> {
    let parts: Vec<&str> = tp.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    };
    let valid = parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|c| c != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|c| c != b'0')
        && hex(parts[3], 2);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "traceparent {tp:?} is not a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)"
        ))
    }
}

/// `java.util.Properties.load`: `key=value`, `key: value` or `key value` lines, `#`/`!` comments,
/// a trailing backslash continues the line, `\t \n \r \f \uXXXX` escapes, any other escaped
/// character stands for itself.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\u{c}');
    while let Some(first) = lines.next() {
        let first = first.trim_start_matches(is_ws);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines (an odd number of trailing backslashes).
        let mut logical = String::new();
        let mut line = first.to_string();
        loop {
            let trailing = line.chars().rev().take_while(|&c| c == '\\').count();
            if trailing % 2 == 1 {
                line.pop();
                logical.push_str(&line);
                match lines.next() {
                    Some(next) => line = next.trim_start_matches(is_ws).to_string(),
                    None => break,
                }
            } else {
                logical.push_str(&line);
                break;
            }
        }
        // Split key and value at the first unescaped separator.
        let chars: Vec<char> = logical.chars().collect();
        let mut i = 0;
        let mut key_end = chars.len();
        while i < chars.len() {
            match chars[i] {
                '\\' => i += 2,
                '=' | ':' => {
                    key_end = i;
                    break;
                }
                c if is_ws(c) => {
                    key_end = i;
                    break;
                }
                _ => i += 1,
            }
        }
        let key_end = key_end.min(chars.len());
        let mut j = key_end;
        while j < chars.len() && is_ws(chars[j]) {
            j += 1;
        }
        if j < chars.len() && (chars[j] == '=' || chars[j] == ':') {
            j += 1;
        }
        while j < chars.len() && is_ws(chars[j]) {
            j += 1;
        }
        let key: String = chars[..key_end].iter().collect();
        let value: String = chars[j..].iter().collect();
        out.push((unescape(&key), unescape(&value)));
    }
    out
}

fn unescape(s: &str) -> String {
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
                if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_span_context_column() {
        let text =
            "#comment\ntraceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n";
        assert_eq!(
            trace_context(text).unwrap(),
            Some(TraceContext {
                traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
                tracestate: None
            })
        );
    }

    #[test]
    fn properties_syntax() {
        let text = "  ! comment\r\na = 1\nb:2\nc 3\nd=x\\\n   y\ne=\\u0041\\=\\t\nf\n";
        assert_eq!(
            parse_properties(text),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "3".into()),
                ("d".into(), "xy".into()),
                ("e".into(), "A=\t".into()),
                ("f".into(), "".into()),
            ]
        );
        let ctx = trace_context(
            "tracestate=rojo=00f067aa0ba902b7\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        )
        .unwrap()
        .unwrap();
        assert_eq!(ctx.tracestate.as_deref(), Some("rojo=00f067aa0ba902b7"));
    }

    #[test]
    fn invalid_or_absent_contexts() {
        assert_eq!(trace_context("").unwrap(), None);
        assert_eq!(trace_context("uber-trace-id=abc").unwrap(), None);
        assert!(
            trace_context("traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331")
                .is_err()
        );
        assert!(trace_context(
            "traceparent=00-00000000000000000000000000000000-b7ad6b7169203331-01"
        )
        .is_err());
    }
}
