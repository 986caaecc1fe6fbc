//! The metric catalogue as the binary renders it and as docs/metrics.md documents it, for the
//! tests that check dashboards, alerts and monitors against both (tests/deploy.rs,
//! tests/helm.rs). Free of the rest of the harness, so those tests include just this file:
//! `#[path = "support/catalog.rs"] mod catalog;`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Families of `Metrics::render`'s text, name → (type, label names). Labelled families appear
/// only once they have a child, so each one gets a sample first.
pub fn rendered_metrics() -> BTreeMap<String, (String, BTreeSet<String>)> {
    use prometheus::core::Collector;
    let m = outboxd::metrics::Metrics::new();
    for vec in [
        &m.events_read,
        &m.events_published,
        &m.bytes_published,
        &m.events_failed,
        &m.events_dead_lettered,
        &m.changes_ignored,
        &m.kafka_transactions,
        &m.position_records,
        &m.takeover_events_skipped,
        &m.replayed_events_skipped,
        &m.cleanup_rows_deleted,
        &m.cleanup_errors,
    ] {
        let arity = vec.desc()[0].variable_labels.len();
        vec.with_label_values(&vec!["sample"; arity]).inc();
    }
    m.commit_to_ack_seconds.observe(0.01);
    m.kafka_commit_seconds.observe(0.01);
    let text = m.render();
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    let sample = regex::Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ").unwrap();
    let label = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)=""#).unwrap();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.insert(name.to_string(), (kind.to_string(), BTreeSet::new()));
        } else if let Some(c) = sample.captures(line) {
            let name = &c[1];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| out.contains_key(*f)))
                .unwrap_or(name);
            if let (Some(entry), Some(labels)) = (out.get_mut(family), c.get(2)) {
                entry.1.extend(
                    label
                        .captures_iter(labels.as_str())
                        .map(|l| l[1].to_string()),
                );
            }
        }
    }
    out
}

/// The metric names in docs/metrics.md's table.
pub fn documented_metrics() -> BTreeSet<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/metrics.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let re = regex::Regex::new(r"^\| `(outboxd_[a-z0-9_]+)` \|").unwrap();
    text.lines()
        .filter_map(|l| re.captures(l).map(|c| c[1].to_string()))
        .collect()
}
