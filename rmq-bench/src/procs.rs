//! Worker processes (this binary, `worker-proc --count 0`) that run until
//! told to stop, and the span of time in which they ran jobs.

use std::process::Stdio;

use tokio::io::AsyncBufReadExt;
use tokio::process::Child;

use crate::scenarios::Setup;

/// Running worker processes.
pub(crate) struct Procs(Vec<Child>);

/// When the first job of any process started and the last one of any
/// ended (ns since the epoch), and the largest peak RSS.
pub(crate) struct Ran {
    first_ns: u64,
    last_ns: u64,
    pub(crate) rss_mb: f64,
}

impl Ran {
    /// Jobs per second for `n` jobs run in that span.
    pub(crate) fn per_s(&self, n: u64) -> f64 {
        n as f64 / (self.last_ns.saturating_sub(self.first_ns) as f64 / 1e9)
    }
}

impl Procs {
    /// Starts one worker process per setup (its Redis URL and prefix).
    pub(crate) fn spawn<'a>(setups: impl IntoIterator<Item = &'a Setup>) -> Procs {
        let exe = std::env::current_exe().expect("own path");
        let children = setups
            .into_iter()
            .map(|setup| {
                tokio::process::Command::new(&exe)
                    .args(["worker-proc", "--redis-url", &setup.url, "--count", "0"])
                    .args(["--prefix", &setup.prefix])
                    .args(["--concurrency", &setup.concurrency.to_string()])
                    .args(["--queue-size", &setup.queue_size.to_string()])
                    .args(["--batch", &setup.batch.to_string()])
                    .args(["--threads", &setup.threads.to_string()])
                    .args(["--pool", &setup.pool.to_string()])
                    .args(setup.metrics.then_some("--metrics"))
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn worker process")
            })
            .collect();
        Procs(children)
    }

    /// Stops every process (SIGTERM: a graceful shutdown) and reads what
    /// each reports.
    pub(crate) async fn stop(self) -> Ran {
        let mut ran = Ran {
            first_ns: u64::MAX,
            last_ns: 0,
            rss_mb: 0.0,
        };
        for mut child in self.0 {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            let stdout = child.stdout.take().expect("piped stdout");
            let line = tokio::io::BufReader::new(stdout)
                .lines()
                .next_line()
                .await
                .ok()
                .flatten()
                .expect("worker process reports");
            let _ = child.wait().await;
            let report: serde_json::Value = serde_json::from_str(&line).expect("report is JSON");
            if let (Some(first), Some(last)) =
                (report["first_ns"].as_u64(), report["last_ns"].as_u64())
            {
                if first > 0 {
                    ran.first_ns = ran.first_ns.min(first);
                    ran.last_ns = ran.last_ns.max(last);
                }
            }
            ran.rss_mb = ran.rss_mb.max(report["rss_mb"].as_f64().unwrap_or(0.0));
        }
        ran
    }
}
