//! The monitoring files in `docs/` parse, and name only metrics rmq exports.

use std::collections::BTreeSet;

use rmq::telemetry::{self, queue};
use yaml_rust2::{Yaml, YamlLoader};

/// Every metric name rmq exports, with the series names of its histograms.
fn exported() -> BTreeSet<String> {
    let families = [
        telemetry::JOBS_ENQUEUED,
        telemetry::EVENTS_PUBLISHED,
        telemetry::BATCHES_COMPLETED,
        telemetry::JOBS_FETCHED,
        telemetry::JOBS_PROCESSED,
        telemetry::JOB_DURATION,
        telemetry::JOB_WAIT,
        telemetry::WORKER_JOBS_ACTIVE,
        telemetry::WORKER_CONCURRENCY,
        telemetry::WORKER_PREFETCHED,
        telemetry::JOB_RUNNING_MAX,
        telemetry::LEASES_LOST,
        telemetry::REDIS_ERRORS,
        telemetry::BUILD_INFO,
        queue::QUEUE_JOBS,
        queue::QUEUE_OLDEST_AGE,
        queue::TOPIC_JOBS,
        queue::TOPIC_DURATION,
        queue::WORKERS,
    ];
    let mut names = BTreeSet::new();
    for family in families {
        names.insert(family.to_owned());
        if family.ends_with("_seconds") {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{family}{suffix}"));
            }
        }
    }
    names
}

/// The `rmq_...` names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("rmq_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

fn assert_known(expr: &str, whence: &str) {
    let exported = exported();
    let names = metric_names(expr);
    assert!(!names.is_empty(), "{whence} names no rmq metric: {expr}");
    for name in names {
        assert!(
            exported.contains(&name),
            "{whence} uses `{name}`, which rmq does not export"
        );
    }
}

#[test]
fn the_alert_rules_parse_and_use_rmq_metrics() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alerts.yml"))
        .expect("docs/alerts.yml");
    let docs = YamlLoader::load_from_str(&text).expect("valid YAML");
    let rules = &docs[0]["groups"][0]["rules"];
    let Yaml::Array(rules) = rules else {
        panic!("groups[0].rules is not a list: {rules:?}");
    };
    let names: Vec<&str> = rules
        .iter()
        .map(|r| r["alert"].as_str().expect("alert name"))
        .collect();
    assert_eq!(
        names,
        ["RmqQueueStuck", "RmqDeadLetterGrowth", "RmqNoWorkers"]
    );
    for rule in rules {
        let name = rule["alert"].as_str().unwrap_or_default();
        assert_known(rule["expr"].as_str().expect("expr"), name);
        assert!(rule["for"].as_str().is_some(), "{name}: for");
        assert!(
            rule["labels"]["severity"].as_str().is_some(),
            "{name}: severity"
        );
        assert!(
            rule["annotations"]["summary"].as_str().is_some(),
            "{name}: summary"
        );
    }
}

#[test]
fn the_grafana_dashboard_parses_and_uses_rmq_metrics() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/grafana-dashboard.json"
    ))
    .expect("docs/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 4);
    for panel in panels {
        let title = panel["title"].as_str().expect("title");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}");
        for target in targets {
            assert_known(target["expr"].as_str().expect("expr"), title);
        }
    }
}
