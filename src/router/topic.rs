//! The topic of a record: `route.topic.regex` matched in full against the routing value and
//! expanded into `route.topic.replacement` with Java's `Matcher` replacement syntax, Kafka's topic
//! name rules, and a bounded cache of the topics already built.
//!
//! Owns topic names only; it must not look at anything of a row but its routing value.

use std::collections::HashMap;

use regex::Regex;

use super::RouterOptions;

/// Valid topics by routing value, so that `route.topic.regex` and the replacement run once per
/// distinct value rather than once per event. Bounded: emptied when full.
#[derive(Debug, Default)]
pub(super) struct TopicCache(HashMap<String, String>);

impl TopicCache {
    /// Distinct routing values kept at most.
    const MAX_ENTRIES: usize = 4096;

    /// The topic for `value`; `Err(topic, problem)` when Kafka would refuse the name.
    pub(super) fn topic(
        &mut self,
        o: &RouterOptions,
        value: &str,
    ) -> Result<String, (String, String)> {
        if let Some(topic) = self.0.get(value) {
            return Ok(topic.clone());
        }
        let topic = route_topic(o, value);
        if let Err(problem) = check_topic_name(&topic) {
            return Err((topic, problem));
        }
        if self.0.len() >= Self::MAX_ENTRIES {
            self.0.clear();
        }
        self.0.insert(value.to_string(), topic.clone());
        Ok(topic)
    }
}

/// Applies `route.topic.regex` / `route.topic.replacement` to the routing value.
pub(super) fn route_topic(options: &RouterOptions, value: &str) -> String {
    match options.topic_regex.captures(value) {
        Some(caps) => expand_java_replacement(&options.topic_replacement, &caps),
        None => value.to_string(),
    }
}

/// Expands a Java `Matcher` replacement string: `${name}` and `$n` refer to groups, `\x` is a
/// literal `x`. (Rust's own `$name` syntax differs from Java's, so it is not used.)
fn expand_java_replacement(replacement: &str, caps: &regex::Captures<'_>) -> String {
    let mut out = String::with_capacity(replacement.len() + 16);
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push_str(caps.name(&name).map_or("", |m| m.as_str()));
            }
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                // Java takes as many digits as still name an existing group.
                let mut group = 0usize;
                while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
                    let candidate = group * 10 + d as usize;
                    if group != 0 && candidate >= caps.len() {
                        break;
                    }
                    group = candidate;
                    chars.next();
                }
                out.push_str(caps.get(group).map_or("", |m| m.as_str()));
            }
            other => out.push(other),
        }
    }
    out
}

/// Every group the replacement names must exist in the regex.
pub(super) fn check_replacement(regex: &Regex, replacement: &str) -> Result<(), String> {
    let mut rest = replacement;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("{replacement:?} has an unclosed ${{"));
        };
        let name = &after[..end];
        if !regex.capture_names().flatten().any(|n| n == name) {
            return Err(format!(
                "{replacement:?} refers to group {name:?}, which route.topic.regex does not define"
            ));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

/// Kafka's topic name rules: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn check_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("it is empty".into());
    }
    if topic == "." || topic == ".." {
        return Err("\".\" and \"..\" are reserved".into());
    }
    if topic.len() > 249 {
        return Err(format!("{} characters, Kafka allows 249", topic.len()));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "character {c:?} is not allowed (only letters, digits, '.', '_' and '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::testing::*;

    #[test]
    fn invalid_topic_names_are_refused() {
        let mut r = default_router();
        let err = route(
            &mut r,
            vec![
                text("id-8"),
                text("Order Lines"),
                text("k"),
                text("t"),
                text("{}"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("id-8") && err.contains("' '"), "{err}");
        assert!(check_topic_name(&"a".repeat(250)).is_err());
        assert!(check_topic_name("..").is_err());
        assert!(check_topic_name("outbox.event.Order_2-x").is_ok());
    }

    #[test]
    fn regex_routing_matches_debezium_golden_case_11() {
        let o = opts(&[
            ("route.by.field", "type"),
            ("route.topic.regex", "(?<routedByValue>[A-Z][a-z]+).*"),
            ("route.topic.replacement", "events.${routedByValue}"),
        ]);
        assert_eq!(route_topic(&o, "OrderCreated"), "events.Order");
        assert_eq!(route_topic(&o, "CustomerMoved"), "events.Customer");
        // Not matched in full: used as the topic unchanged, as RegexRouter does.
        assert_eq!(route_topic(&o, "lower"), "lower");
    }

    #[test]
    fn the_topic_cache_gives_what_route_topic_gives_and_stays_bounded() {
        let o = opts(&[
            ("route.by.field", "type"),
            ("route.topic.regex", "(?<routedByValue>[A-Z][a-z]+).*"),
            ("route.topic.replacement", "events.${routedByValue}"),
        ]);
        let mut cache = TopicCache::default();
        for value in [
            "OrderCreated",
            "CustomerMoved",
            "lower",
            "OrderCreated",
            "Order",
        ] {
            assert_eq!(cache.topic(&o, value), Ok(route_topic(&o, value)));
        }
        assert_eq!(cache.0.len(), 4);
        let (topic, problem) = cache.topic(&o, "bad/value").unwrap_err();
        assert_eq!(topic, "bad/value");
        assert!(problem.contains('/'), "{problem}");
        assert_eq!(cache.0.len(), 4, "invalid topics are not cached");
        for i in 0..TopicCache::MAX_ENTRIES + 10 {
            cache.topic(&o, &format!("v{i}")).unwrap();
        }
        assert!(cache.0.len() <= TopicCache::MAX_ENTRIES);
    }

    #[test]
    fn java_replacement_syntax() {
        let re = Regex::new("^(?:(?<a>x+)-(y+))$").unwrap();
        let caps = re.captures("xx-yyy").unwrap();
        assert_eq!(
            expand_java_replacement("${a}/$2/$0", &caps),
            "xx/yyy/xx-yyy"
        );
        assert_eq!(expand_java_replacement(r"\$1 $21", &caps), "$1 yyy1");
    }
}
