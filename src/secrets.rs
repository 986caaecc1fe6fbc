//! Secret references in configuration values: `${env:NAME}` is replaced by the environment
//! variable `NAME`, `${file:/path}` by the file's content (one trailing newline removed), so that
//! passwords (`source.url`, `[kafka] "sasl.password"`, `"ssl.key.password"`, ...) need not be
//! written into the configuration file. `$${env:` / `$${file:` write that text literally; any other
//! `${...}` (such as the router's `${routedByValue}`) is left as it is.
//!
//! Resolution happens when the configuration is resolved, before any connection; errors name the
//! key and the variable or file, never the secret.

use crate::config::ConfigError;

/// Replaces every `${env:NAME}` / `${file:PATH}` in `value` (the value of config key `key`).
pub fn resolve(key: &str, value: &str) -> Result<String, ConfigError> {
    resolve_with(key, value, &|name| std::env::var(name).ok(), &|path| {
        std::fs::read_to_string(path)
    })
}

/// [`resolve`] with explicit lookups (for tests).
pub fn resolve_with(
    key: &str,
    value: &str,
    env: &dyn Fn(&str) -> Option<String>,
    file: &dyn Fn(&str) -> std::io::Result<String>,
) -> Result<String, ConfigError> {
    const KINDS: [&str; 2] = ["env:", "file:"];
    if !KINDS.iter().any(|k| value.contains(&format!("${{{k}"))) {
        return Ok(value.to_string());
    }
    let invalid = |message: String| ConfigError::Invalid {
        key: key.to_string(),
        message,
    };
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        // `$${env:` → literal `${env:`.
        if let Some(escaped) = after.strip_prefix("$$") {
            if KINDS.iter().any(|k| escaped.starts_with(&format!("{{{k}"))) {
                // Copy `${kind:` literally so it is not taken as a reference.
                let kind_end = escaped.find(':').map_or(escaped.len(), |i| i + 1);
                out.push('$');
                out.push_str(&escaped[..kind_end]);
                rest = &escaped[kind_end..];
                continue;
            }
        }
        let reference = after
            .strip_prefix("${")
            .filter(|b| KINDS.iter().any(|k| b.starts_with(k)));
        let Some(body) = reference else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let end = body.find('}').ok_or_else(|| {
            invalid("a ${env:...} or ${file:...} reference is not closed with }".into())
        })?;
        let resolved = match body[..end].split_once(':') {
            Some(("env", name)) => env(name).ok_or_else(|| {
                invalid(format!(
                    "refers to the environment variable {name}, which is not set"
                ))
            })?,
            Some((_, path)) => {
                let mut text = file(path).map_err(|e| {
                    invalid(format!(
                        "refers to the file {path}, which cannot be read: {e}"
                    ))
                })?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                text
            }
            None => String::new(),
        };
        out.push_str(&resolved);
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KAFKA_PASSWORD").then(|| "s3cret".to_string())
    }

    fn file(path: &str) -> std::io::Result<String> {
        match path {
            "/run/secrets/pg" => Ok("pg-pass\n".into()),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file",
            )),
        }
    }

    #[test]
    fn replaces_env_and_file_references() {
        let r = |v: &str| resolve_with("k", v, &env, &file);
        assert_eq!(r("${env:KAFKA_PASSWORD}").unwrap(), "s3cret");
        assert_eq!(
            r("postgres://u:${file:/run/secrets/pg}@h/db").unwrap(),
            "postgres://u:pg-pass@h/db"
        );
        assert_eq!(r("plain $ value").unwrap(), "plain $ value");
        assert_eq!(r("$${env:X}").unwrap(), "${env:X}");
        assert_eq!(
            r("a${env:KAFKA_PASSWORD}b${env:KAFKA_PASSWORD}").unwrap(),
            "as3cretbs3cret"
        );
    }

    #[test]
    fn other_placeholders_are_left_alone() {
        let r = |v: &str| resolve_with("k", v, &env, &file);
        assert_eq!(
            r("outbox.event.${routedByValue}").unwrap(),
            "outbox.event.${routedByValue}"
        );
        assert_eq!(
            r("${routedByValue}.${env:KAFKA_PASSWORD}").unwrap(),
            "${routedByValue}.s3cret"
        );
    }

    #[test]
    fn errors_name_the_key_and_reference_never_a_secret() {
        let r = |v: &str| resolve_with("kafka.\"sasl.password\"", v, &env, &file);
        let e = r("${env:MISSING}").unwrap_err().to_string();
        assert!(
            e.contains("kafka.\"sasl.password\"") && e.contains("MISSING"),
            "{e}"
        );
        let e = r("${file:/nope}").unwrap_err().to_string();
        assert!(e.contains("/nope"), "{e}");
        let e = r("x${env:KAFKA_PASSWORD").unwrap_err().to_string();
        assert!(e.contains("not closed") && !e.contains("s3cret"), "{e}");
    }
}
