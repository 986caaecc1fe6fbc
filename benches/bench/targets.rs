//! The targets of issues #6 and #16, judged from a report: drain ratio, peak RSS, p99 at 5k and
//! at 1k ev/s, CPU per 10k ev/s. Informative only: nothing fails on a figure.

use crate::report::{mb, Report, Target};

pub fn targets(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    // 1. drain >= 0.95 x pg_recvlogical, judged on backlogs of 100k rows or more
    let all_ratios: Vec<(String, f64, u64)> = r
        .backlog
        .iter()
        .filter_map(|b| b.median_ratio.map(|x| (b.name.clone(), x, b.rows)))
        .collect();
    let judged: Vec<f64> = all_ratios
        .iter()
        .filter(|(_, _, n)| *n >= 100_000)
        .map(|(_, x, _)| *x)
        .collect();
    let small: Vec<&str> = all_ratios
        .iter()
        .filter(|(_, _, n)| *n < 100_000)
        .map(|(name, _, _)| name.as_str())
        .collect();
    out.push(Target {
        name: "backlog_drain_ratio",
        target: ">= 0.95 x pg_recvlogical on the same WAL",
        measured: if all_ratios.is_empty() {
            "-".into()
        } else {
            all_ratios
                .iter()
                .map(|(n, x, _)| format!("{n}: {x:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        met: (!judged.is_empty()).then(|| judged.iter().all(|x| *x >= 0.95)),
        note: if small.is_empty() {
            String::new()
        } else {
            format!(
                "not judged on {} (under 100k rows: process start-up dominates)",
                small.join(", ")
            )
        },
    });
    // 2. peak RSS <= 48 MB during a 1M drain
    let all_rss: Vec<(String, u64, u64)> = r
        .backlog
        .iter()
        .filter_map(|b| b.peak_rss_bytes.map(|x| (b.name.clone(), x, b.rows)))
        .collect();
    let full: Vec<&(String, u64, u64)> =
        all_rss.iter().filter(|(_, _, n)| *n >= 1_000_000).collect();
    // Judged on the 1M drains when there are some; otherwise shown for what was drained.
    let rss: Vec<&(String, u64, u64)> = if full.is_empty() {
        all_rss.iter().collect()
    } else {
        full.clone()
    };
    out.push(Target {
        name: "peak_rss_1m_drain",
        target: "<= 48 MB peak RSS during a 1M drain",
        measured: rss
            .iter()
            .map(|(n, x, _)| format!("{n}: {} MB", mb(Some(*x))))
            .collect::<Vec<_>>()
            .join(", "),
        met: (!full.is_empty()).then(|| full.iter().all(|(_, x, _)| *x <= 48 * 1048576)),
        note: if full.is_empty() && !rss.is_empty() {
            "no drain of 1M rows in this run".into()
        } else {
            String::new()
        },
    });
    // 3. p99 <= 20 ms at 5k ev/s, <= 10 ms at 1k ev/s
    let step_at = |rate: u64| {
        r.steady
            .as_ref()
            .and_then(|s| s.steps.iter().find(|st| st.target_rate == rate))
    };
    let at5k = step_at(5000);
    for (name, rate, bound) in [("p99_at_5k", 5000, 20.0), ("p99_at_1k", 1000, 10.0)] {
        let step = step_at(rate);
        out.push(Target {
            name,
            target: if rate == 5000 {
                "p99 commit-to-consumer <= 20 ms at 5k ev/s"
            } else {
                "p99 commit-to-consumer <= 10 ms at 1k ev/s"
            },
            measured: step.map_or("-".into(), |s| format!("{:.2} ms", s.p99_ms)),
            met: step.map(|s| s.p99_ms <= bound && s.sustained),
            note: match step {
                None => format!("no {rate} ev/s step in this run"),
                Some(s) => s.probe.as_ref().map_or(String::new(), |p| {
                    format!(
                        "the broker probe alone, same step: p99 {:.2} ms, p50 {:.2} ms",
                        p.p99_ms, p.p50_ms
                    )
                }),
            },
        });
    }
    // 4. <= 0.2 core per 10k ev/s (steady state, at 5k or the highest sustained fixed step)
    let st = at5k.or_else(|| {
        r.steady.as_ref().and_then(|s| {
            s.steps
                .iter()
                .filter(|s| s.sustained)
                .max_by_key(|s| s.target_rate)
        })
    });
    out.push(Target {
        name: "cpu_per_10k_eps",
        target: "<= 0.2 CPU core per 10k ev/s",
        measured: st.map_or("-".into(), |s| {
            format!(
                "{:.3} cores per 10k ev/s at {} ev/s",
                s.relay_cores_per_10k_eps, s.target_rate
            )
        }),
        met: st.map(|s| s.relay_cores_per_10k_eps <= 0.2),
        note: {
            let drains: Vec<String> = r
                .backlog
                .iter()
                .map(|b| format!("{}: {:.3}", b.name, b.median_cpu_s_per_100k / 10.0))
                .collect();
            if drains.is_empty() {
                String::new()
            } else {
                format!(
                    "drain equivalent (CPU s per 100k / 10): {}",
                    drains.join(", ")
                )
            }
        },
    });
    out
}
