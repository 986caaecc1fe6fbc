//! `tracing.span.context.field`: a column holding a serialized span context in Java properties
//! text (what Debezium's and Quarkus' outbox helpers write: `traceparent=00-…-…-01`, optionally
//! `tracestate=…`), forwarded as the W3C `traceparent` and `tracestate` record headers.

use crate::config::java_properties;

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

/// The entries of a span-context column in file order ([`java_properties::parse_lenient`]: a
/// malformed `\u` escape does not hide the other entries).
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    java_properties::parse_lenient(text)
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
