//! Results: one record per scenario, printed as a table and written as JSON
//! lines.

use std::io::Write;

use serde::Serialize;

/// One scenario's result. Absent figures are omitted from the JSON.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Record {
    pub(crate) scenario: String,
    pub(crate) n: u64,
    pub(crate) concurrency: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bytes_per_job: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rss_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redis_us_per_job: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redis_script_us_per_job: Option<f64>,
    /// CPU time of the worker process per job (all its threads).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) worker_cpu_us_per_job: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backlog: Option<u64>,
}

impl Record {
    pub(crate) fn new(scenario: impl Into<String>, n: u64, concurrency: usize) -> Record {
        Record {
            scenario: scenario.into(),
            n,
            concurrency,
            ..Record::default()
        }
    }
}

pub(crate) fn print_header() {
    println!(
        "{:<28} {:>9} {:>5} {:>12} {:>8} {:>8} {:>9} {:>8} {:>10} {:>11} {:>10}",
        "scenario",
        "n",
        "conc",
        "per_s",
        "p50_ms",
        "p99_ms",
        "bytes/job",
        "rss_mb",
        "redis_us/j",
        "script_us/j",
        "wcpu_us/j"
    );
}

pub(crate) fn print_row(r: &Record) {
    let f = |v: Option<f64>, prec: usize| v.map_or("-".to_owned(), |v| format!("{v:.prec$}"));
    println!(
        "{:<28} {:>9} {:>5} {:>12} {:>8} {:>8} {:>9} {:>8} {:>10} {:>11} {:>10}",
        r.scenario,
        r.n,
        r.concurrency,
        f(r.per_s, 0),
        f(r.p50_ms, 3),
        f(r.p99_ms, 3),
        f(r.bytes_per_job, 1),
        f(r.rss_mb, 1),
        f(r.redis_us_per_job, 2),
        f(r.redis_script_us_per_job, 2),
        f(r.worker_cpu_us_per_job, 2),
    );
}

pub(crate) fn append_json(path: &std::path::Path, records: &[Record]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for r in records {
        serde_json::to_writer(&mut file, r)?;
        file.write_all(b"\n")?;
    }
    Ok(())
}

/// The `q`-quantile (0..=1) of sorted nanosecond values, in ms.
pub(crate) fn quantile_ms(sorted_ns: &[u64], q: f64) -> Option<f64> {
    if sorted_ns.is_empty() {
        return None;
    }
    let rank = ((sorted_ns.len() as f64 * q).ceil() as usize).clamp(1, sorted_ns.len());
    Some(sorted_ns[rank - 1] as f64 / 1e6)
}
