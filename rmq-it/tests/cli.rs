//! The worker command line on real data: every subcommand, with its errors
//! and exit codes (0 success, 1 Redis trouble, 2 bad input).

mod common;

use std::process::Output;
use std::time::Duration;

use common::{cli, count, eventually, Probe, Worker};
use rmq::Priority;
use rmq_it::{Permanent, Record, ATTEMPTS};
use rmq_testkit::RedisServer;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn ok(output: Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Asserts exit code `code` and returns standard error.
#[track_caller]
fn fails(output: Output, code: i32) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    stderr(&output)
}

/// The whitespace-separated columns of the line of `topic` in a table.
fn row(table: &str, topic: &str) -> Vec<String> {
    table
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|cols| cols.first().map(String::as_str) == Some(topic))
        .unwrap_or_else(|| panic!("no row for `{topic}` in:\n{table}"))
}

#[test]
fn tasks_lists_every_linked_topic_with_its_policy() {
    // `tasks` needs no Redis at all.
    let out = ok(cli("redis://127.0.0.1:1", &["tasks"]));
    let hangs = row(&out, "hangs");
    assert_eq!(hangs[1], "normal", "{out}");
    assert_eq!(hangs[2], "1", "retries: {out}");
    assert_eq!(hangs[3], "50ms", "retry delays: {out}");
    assert_eq!(hangs[4], "300ms", "timeout: {out}");
    assert!(hangs.contains(&"rmq_it::hangs".to_owned()), "{out}");
    assert_eq!(row(&out, "panics")[2], "2");
    assert_eq!(row(&out, "record")[2], "5");
    assert!(out.contains("Slow { seq: u64, millis: u64 }"), "{out}");
    for topic in ["flaky", "permanent", "slow"] {
        row(&out, topic);
    }
}

#[tokio::test]
async fn enqueue_prints_the_id_and_rejects_unknown_topics_and_misfit_json() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());

    let id = ok(cli(&url, &["enqueue", "record", r#"{"seq": 42}"#]));
    let id = id.trim();
    assert!(!id.is_empty() && !id.contains('\n'), "one id: {id:?}");
    let out = ok(cli(
        &url,
        &[
            "enqueue",
            "record",
            r#"{"seq": 43}"#,
            "--priority",
            "high",
            "--id",
            "job-43",
        ],
    ));
    assert_eq!(out.trim(), "job-43");
    let stats = probe.stats("record").await;
    assert_eq!(stats.pending, [1, 1, 0]);
    let err = fails(
        cli(
            &url,
            &["enqueue", "record", r#"{"seq": 44}"#, "--id", "job-43"],
        ),
        2,
    );
    assert!(err.contains("job-43"), "{err}");

    let err = fails(cli(&url, &["enqueue", "nope", r#"{"seq": 1}"#]), 2);
    assert!(
        err.contains("no task is registered for topic `nope`"),
        "{err}"
    );
    let err = fails(cli(&url, &["enqueue", "record", r#"{"seq": "x"}"#]), 2);
    assert!(
        err.contains("does not fit") && err.contains("Record"),
        "{err}"
    );
    let err = fails(cli(&url, &["enqueue", "slow", r#"{"seq": 1}"#]), 2);
    assert!(err.contains("millis"), "names the missing field: {err}");
    let err = fails(cli(&url, &["enqueue", "record", "not json"]), 2);
    assert!(err.contains("does not fit"), "{err}");
    assert_eq!(
        probe.stats("record").await.pending,
        [1, 1, 0],
        "nothing added"
    );

    // What `enqueue` queued runs.
    let _worker = Worker::run(&url, &["--topics", "record"], &[]);
    eventually("both records to run", Duration::from_secs(15), || async {
        (probe.ran("record").await.len() == 2).then_some(())
    })
    .await;
    let ran = probe.ran("record").await;
    assert_eq!((ran.get(&42), ran.get(&43)), (Some(&1), Some(&1)));
}

#[tokio::test]
async fn stats_shows_depths_as_a_table_and_as_json() {
    let redis = RedisServer::start();
    let url = redis.url();
    let client = Probe::new(url.clone()).client().await;
    client
        .enqueue_many((0..3).map(|seq| Record { seq }))
        .await
        .unwrap();
    Record { seq: 9 }
        .priority(Priority::Low)
        .enqueue(&client)
        .await
        .unwrap();
    Record { seq: 10 }
        .delay(Duration::from_secs(600))
        .enqueue(&client)
        .await
        .unwrap();

    let table = ok(cli(&url, &["stats"]));
    let header = row(&table, "topic");
    let record = row(&table, "record");
    let col = |name: &str| {
        let i = header.iter().position(|h| h == name).expect(name);
        record[i].clone()
    };
    assert_eq!(
        (col("high"), col("normal"), col("low"), col("delayed")),
        ("0".into(), "3".into(), "1".into(), "1".into()),
        "{table}"
    );
    row(&table, "slow"); // linked topics show even when never used

    let json = ok(cli(&url, &["stats", "--json", "--topics", "record"]));
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("stats --json parses");
    let all = parsed.as_array().expect("an array of topics");
    assert_eq!(all.len(), 1, "{json}");
    assert_eq!(all[0]["topic"], "record");
    assert_eq!(all[0]["pending"], serde_json::json!([0, 3, 1]));
    assert_eq!(all[0]["delayed"], 1);
    assert_eq!(all[0]["dead"], 0);
}

#[test]
fn stats_with_redis_unreachable_exits_1_with_a_clear_message() {
    let url = format!("redis://127.0.0.1:{}", rmq_testkit::free_port());
    let err = fails(cli(&url, &["stats"]), 1);
    assert!(err.contains("cannot connect to Redis"), "{err}");
    assert!(err.contains(&url), "names the server: {err}");
    let err = fails(cli(&url, &["dlq", "list", "record"]), 1);
    assert!(err.contains("cannot connect to Redis"), "{err}");
}

#[test]
fn run_with_a_wrong_password_exits_2_at_once_instead_of_retrying() {
    let redis = RedisServer::with(rmq_testkit::Options {
        password: Some("right".into()),
        ..Default::default()
    });
    let url = format!("redis://:not-the-pw@127.0.0.1:{}", redis.port());
    // `cli` fails the test if the command is still running after 30 s.
    let err = fails(cli(&url, &["run"]), 2);
    assert!(err.contains("password was rejected"), "{err}");
    assert!(!err.contains("not-the-pw"), "password leaked: {err}");
}

#[tokio::test]
async fn dlq_list_show_retry_and_purge_real_dead_jobs() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    let first = Permanent { seq: 1 }.enqueue(&client).await.unwrap();
    let second = Permanent { seq: 2 }.enqueue(&client).await.unwrap();
    let (first, second) = (first.to_string(), second.to_string());

    let out = ok(cli(&url, &["dlq", "list", "permanent"]));
    assert!(out.contains("empty"), "{out}");

    let _worker = Worker::run(&url, &["--topics", "permanent"], &[]);
    let dead_count = |n: u64| {
        let probe = &probe;
        async move {
            eventually(
                &format!("{n} dead jobs"),
                Duration::from_secs(15),
                || async { (probe.stats("permanent").await.dead == n).then_some(()) },
            )
            .await
        }
    };
    dead_count(2).await;

    let out = ok(cli(&url, &["dlq", "list", "permanent"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{first} ")))
            && lines.iter().any(|l| l.starts_with(&format!("{second} "))),
        "{out}"
    );
    let died: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.split("died=")
                .nth(1)
                .expect("died=")
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert!(died[0] >= died[1], "newest first: {out}");
    assert!(
        out.contains("attempt=1 ") && out.contains("bad input 1"),
        "{out}"
    );
    let out = ok(cli(&url, &["dlq", "list", "permanent", "--limit", "1"]));
    assert_eq!(out.lines().count(), 1, "{out}");

    let out = ok(cli(&url, &["dlq", "show", "permanent", &first]));
    assert!(out.contains(&format!("id:          {first}")), "{out}");
    assert!(out.contains("error:       bad input 1"), "{out}");
    assert!(
        out.contains("attempt:     1 (the last; at most 4 with retries = 3)"),
        "{out}"
    );
    assert!(out.contains("\"seq\": 1"), "payload as JSON: {out}");
    let err = fails(cli(&url, &["dlq", "show", "permanent", "no-such-id"]), 2);
    assert!(err.contains("no job `no-such-id`"), "{err}");

    // Retry one: it runs again (attempt reset to 1) and dies again.
    let out = ok(cli(&url, &["dlq", "retry", "permanent", &first]));
    assert!(out.contains("re-enqueued 1"), "{out}");
    eventually(
        "the retried job to run",
        Duration::from_secs(15),
        || async {
            let runs = count(&probe.list(ATTEMPTS).await, "permanent");
            (runs.get(&1) == Some(&2)).then_some(())
        },
    )
    .await;
    dead_count(2).await;
    let attempts = probe.list(ATTEMPTS).await;
    assert_eq!(
        attempts.iter().filter(|a| *a == "permanent:1:1").count(),
        2,
        "the retry starts over at attempt 1: {attempts:?}"
    );
    let err = fails(cli(&url, &["dlq", "retry", "permanent", "no-such-id"]), 2);
    assert!(err.contains("no-such-id"), "{err}");

    // Retry all: both run once more.
    let out = ok(cli(&url, &["dlq", "retry", "permanent", "--all"]));
    assert!(out.contains("re-enqueued 2"), "{out}");
    eventually(
        "both retried jobs to run",
        Duration::from_secs(15),
        || async {
            let runs = count(&probe.list(ATTEMPTS).await, "permanent");
            (runs.get(&1) == Some(&3) && runs.get(&2) == Some(&2)).then_some(())
        },
    )
    .await;
    dead_count(2).await;

    let out = ok(cli(&url, &["dlq", "purge", "permanent"]));
    assert!(out.contains("deleted 2"), "{out}");
    let stats = probe.stats("permanent").await;
    assert_eq!(stats.dead, 0);
    let out = ok(cli(&url, &["dlq", "list", "permanent"]));
    assert!(out.contains("empty"), "{out}");
}

#[test]
fn run_refuses_an_empty_or_unknown_topic_selection_and_bad_config() {
    let redis = RedisServer::start();
    let url = redis.url();
    let err = fails(cli(&url, &["run", "--topics", "nope"]), 2);
    assert!(err.contains("`nope`"), "{err}");
    let err = fails(cli(&url, &["run", "--topics", "record,nope"]), 2);
    assert!(err.contains("`nope`"), "{err}");
    let err = fails(cli(&url, &["run", "--topics", ""]), 2);
    assert!(err.contains("topic"), "{err}");
    let err = fails(cli(&url, &["run", "--concurrency", "0"]), 2);
    assert!(err.contains("max_workers"), "{err}");
}
