//! Cron schedules with real worker processes: three workers fire a
//! schedule exactly once per occurrence across a `kill -9` of one of them and
//! a daylight-saving transition, and the `cron` CLI lists, pauses, resumes
//! and triggers schedules.
//!
//! The schedule math runs on a shifted clock (`RMQ_IT_CRON_OFFSET_MS`, the
//! same offset in the test and in every worker) that puts the run a few
//! seconds before Europe/Berlin falls back from CEST to CET (or springs
//! forward); due times come from Redis `TIME` plus that offset.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{cli, drained, eventually, Probe, Worker};
use rmq::broker::ScheduleSpec;
use rmq::{CatchUp, CronClock, Overlap};
use rmq_it::CRON_RUNS;
use rmq_testkit::RedisServer;

/// 2026-10-25T01:00:00Z: 03:00 CEST becomes 02:00 CET in Berlin.
const FALL_BACK_MS: i64 = 1_792_890_000_000;

/// 2026-03-29T01:00:00Z: 02:00 CET becomes 03:00 CEST in Berlin.
const SPRING_FORWARD_MS: i64 = 1_774_746_000_000;

const SHORT_LEASE: [(&str, &str); 2] = [("MQ_LEASE", "1"), ("MQ_PROCESSING_MONITOR_INTERVAL", "1")];

/// The recorded runs: job id -> attempts seen.
async fn runs(probe: &Probe) -> BTreeMap<String, Vec<u32>> {
    let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for entry in probe.list(CRON_RUNS).await {
        let (id, attempt) = entry.rsplit_once('|').expect("id|attempt");
        out.entry(id.to_owned())
            .or_default()
            .push(attempt.parse().expect("attempt"));
    }
    out
}

/// The occurrence instants of the recorded runs of schedule `name`.
fn instants(runs: &BTreeMap<String, Vec<u32>>, name: &str) -> BTreeSet<i64> {
    let prefix = format!("cron:{name}:");
    runs.keys()
        .filter_map(|id| id.strip_prefix(&prefix)?.parse().ok())
        .collect()
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn three_workers_fire_each_occurrence_once_across_a_kill_and_the_fall_back() {
    // Every second of the local hour 2: 02:59:5x CEST, then (the clocks go
    // back) 02:00:00 CET onwards, the second pass of hour 2.
    across_a_kill_and_a_transition(FALL_BACK_MS, "* * 2 * * *").await;
}

#[tokio::test]
async fn three_workers_fire_each_occurrence_once_across_a_kill_and_the_spring_forward() {
    // Every second of the local hours 1 and 3: 01:59:5x CET, then (the
    // clocks jump) 03:00:00 CEST onwards, with no second lost.
    across_a_kill_and_a_transition(SPRING_FORWARD_MS, "* * 1,3 * * *").await;
}

/// Three workers fire `expression` (Europe/Berlin) from 5 s before
/// `transition_ms` until at least 24 occurrences ran, one worker killed
/// after 5.
async fn across_a_kill_and_a_transition(transition_ms: i64, expression: &str) {
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let client = probe.client().await;
    let broker = client.broker().expect("redis client").clone();

    let clock = CronClock::shifted(broker.server_now_ms(), transition_ms - 5_000);
    let offset = clock.offset_ms.to_string();
    let spec = ScheduleSpec {
        overlap: Overlap::Allow,
        catch_up: CatchUp::All {
            within: Duration::from_secs(60),
        },
        ..ScheduleSpec::new(expression, "Europe/Berlin")
    };
    let payload = rmq::codec::encode(&rmq_it::CronTick {}).unwrap();
    let first = broker
        .set_schedule("cron_tick", "dst", &spec, &payload, clock)
        .await
        .expect("set the schedule");
    assert!(
        (transition_ms - 5_000..transition_ms).contains(&first),
        "first occurrence {first} is just before the transition"
    );

    let env = [
        SHORT_LEASE[0],
        SHORT_LEASE[1],
        ("RMQ_IT_CRON_OFFSET_MS", offset.as_str()),
    ];
    let mut workers: Vec<Worker> = (0..3)
        .map(|_| Worker::run(&redis.url(), &["--concurrency", "2"], &env))
        .collect();

    eventually("5 occurrences to run", Duration::from_secs(30), || async {
        (instants(&runs(&probe).await, "dst").len() >= 5).then_some(())
    })
    .await;
    let status = workers[1].kill9().await;
    assert!(!status.success());

    eventually("24 occurrences to run", Duration::from_secs(60), || async {
        (instants(&runs(&probe).await, "dst").len() >= 24).then_some(())
    })
    .await;
    // Stop firing (through Redis, on every worker), then let the runs drain.
    let paused = stdout(&cli(&redis.url(), &["cron", "pause", "cron_tick", "dst"]));
    assert!(paused.contains("paused schedule `dst`"), "{paused}");
    let stats = drained(&probe, "cron_tick", Duration::from_secs(30)).await;
    let recorded = runs(&probe).await;
    let fired = instants(&recorded, "dst");

    // One job per occurrence: every second from the first on, no gap, no
    // instant twice; each job completed once (a run cut short by the kill
    // is recovered and re-run as attempt 2 of the same job, never enqueued
    // again).
    let last = *fired.last().unwrap();
    let expected: BTreeSet<i64> = (0..=(last - first) / 1000)
        .map(|i| first + i * 1000)
        .collect();
    assert_eq!(fired, expected, "one run per second, no gap");
    assert!(fired.len() >= 20);
    assert!(
        first < transition_ms && last >= transition_ms + 10_000,
        "the runs cross the transition: {first}..{last}"
    );
    for (id, attempts) in &recorded {
        assert_eq!(
            attempts.iter().filter(|&&a| a == 1).count(),
            1,
            "{id} first ran once: {attempts:?}"
        );
    }
    assert_eq!(stats.completed, fired.len() as u64, "{stats:?}");
    assert_eq!(stats.dead, 0, "{stats:?}");

    // Paused: no more runs, the schedule moves on.
    let listed = stdout(&cli(&redis.url(), &["cron", "list", "cron_tick"]));
    let row = listed
        .lines()
        .find(|l| l.starts_with("dst "))
        .unwrap_or_else(|| panic!("no row for `dst`:\n{listed}"));
    assert!(
        row.contains("cron_tick") && row.contains("Europe/Berlin"),
        "{row}"
    );
    assert!(row.trim_end().ends_with("yes"), "paused: {row}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(instants(&runs(&probe).await, "dst"), fired, "paused");
    drop(workers);
}

#[tokio::test]
async fn cli_lists_triggers_pauses_and_resumes_a_task_schedule() {
    let redis = RedisServer::start();
    let probe = Probe::new(redis.url());
    let tasks = stdout(&cli(&redis.url(), &["tasks"]));
    assert!(
        tasks.contains(r#"cron "0 0 3 1 1 *" tz Europe/Berlin overlap skip catch-up none"#),
        "{tasks}"
    );
    let _worker = Worker::run(&redis.url(), &["--concurrency", "2"], &[]);

    // The worker sets the schedule of the `cron = ...` task at start.
    let row = eventually("the task schedule", Duration::from_secs(30), || async {
        let out = cli(&redis.url(), &["cron", "list"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.starts_with("yearly_report "))
            .map(str::to_owned)
    })
    .await;
    assert!(row.contains("0 0 3 1 1 *"), "{row}");
    assert!(
        row.contains("Europe/Berlin") && row.contains("none"),
        "{row}"
    );
    assert!(row.trim_end().ends_with("no"), "{row}");

    let out = stdout(&cli(&redis.url(), &["cron", "trigger", "yearly_report"]));
    assert!(out.contains("enqueued cron:yearly_report:now:"), "{out}");
    eventually("the triggered run", Duration::from_secs(20), || async {
        let runs = runs(&probe).await;
        runs.keys()
            .any(|id| id.starts_with("cron:yearly_report:now:"))
            .then_some(())
    })
    .await;

    let out = stdout(&cli(&redis.url(), &["cron", "pause", "yearly_report"]));
    assert!(out.contains("paused"), "{out}");
    let out = stdout(&cli(&redis.url(), &["cron", "list", "--json"]));
    let listed: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("a line")).expect("json");
    assert_eq!(listed["name"], "yearly_report");
    assert_eq!(listed["paused"], true);
    assert_eq!(listed["spec"]["from_task"], true);
    assert!(listed["last_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("cron:yearly_report:now:")));
    let out = stdout(&cli(&redis.url(), &["cron", "resume", "yearly_report"]));
    assert!(out.contains("resumed"), "{out}");

    let out = cli(&redis.url(), &["cron", "pause", "yearly_report", "nope"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such schedule"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
