//! The worker command line on real data: every subcommand, with its errors
//! and exit codes (0 success, 1 Redis trouble, 2 bad input).

mod common;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::{cli, count, eventually, Probe, Worker};
use redis::AsyncCommands;
use rmq::broker::Failure;
use rmq::Priority;
use rmq_it::{Permanent, Record, ATTEMPTS};
use rmq_testkit::RedisServer;

/// Bytes no rmq script wrote: neither an entry nor a job.
const GARBAGE: &[u8] = b"\xffgarbage";
const LEASE: Duration = Duration::from_secs(30);

/// Now, ms since the epoch: a score the stores' age retention keeps.
fn now_ms() -> u64 {
    rmq::envelope::millis(std::time::SystemTime::now())
}

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

/// Runs a CLI command with `input` on its standard input.
fn cli_with_stdin(url: &str, args: &[&str], input: Vec<u8>) -> Output {
    let mut child = common::command(url, args, &[("RUST_LOG", "warn")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rmq-it-worker");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait for rmq-it-worker");
    writer.join().expect("stdin writer").expect("write stdin");
    output
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

#[tokio::test]
async fn enqueue_reads_large_json_from_stdin_or_a_file() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    // Over the 128 KiB one command-line argument can hold.
    let pad = "x".repeat(256 * 1024);
    let json = format!(r#"{{"pad": "{pad}", "seq": 77}}"#);
    assert!(json.len() > 200 * 1024);
    let out = ok(cli_with_stdin(
        &url,
        &["enqueue", "record", "-", "--id", "from-stdin"],
        json.clone().into_bytes(),
    ));
    assert_eq!(out.trim(), "from-stdin");

    let path = std::env::temp_dir().join(format!("rmq-it-enqueue-{}.json", std::process::id()));
    std::fs::write(&path, json.replace("77", "78")).unwrap();
    let arg = format!("@{}", path.display());
    let out = ok(cli(&url, &["enqueue", "record", &arg, "--id", "from-file"]));
    assert_eq!(out.trim(), "from-file");
    std::fs::remove_file(&path).unwrap();

    let err = fails(cli(&url, &["enqueue", "record", &arg]), 2);
    assert!(
        err.contains("cannot read the JSON file") && err.contains(&path.display().to_string()),
        "{err}"
    );
    let err = fails(cli(&url, &["enqueue", "record", "@"]), 2);
    assert!(err.contains("file name"), "{err}");
    let err = fails(
        cli_with_stdin(&url, &["enqueue", "record", "-"], b"{\"seq\": ".to_vec()),
        2,
    );
    assert!(err.contains("does not fit"), "{err}");

    let client = probe.client().await;
    let broker = client.broker().unwrap();
    let jobs = broker.fetch("record", 10, LEASE).await.unwrap().jobs;
    let seqs: Vec<(String, serde_json::Value)> = jobs
        .iter()
        .map(|job| {
            let payload = rmq::codec::to_json(job.payload()).unwrap();
            (job.id().to_owned(), payload["seq"].clone())
        })
        .collect();
    assert_eq!(
        seqs,
        [
            ("from-stdin".to_owned(), serde_json::json!(77)),
            ("from-file".to_owned(), serde_json::json!(78)),
        ]
    );
}

#[tokio::test]
async fn errors_about_a_huge_id_quote_only_its_start() {
    let redis = RedisServer::start();
    let url = redis.url();
    let id = "i".repeat(10_000);
    let err = fails(
        cli(&url, &["enqueue", "record", r#"{"seq": 1}"#, "--id", &id]),
        2,
    );
    assert!(
        err.contains(&format!("`{}… (10000 bytes)`", "i".repeat(64))),
        "{err}"
    );
    assert!(err.len() < 400, "{} bytes of error", err.len());
    let err = fails(cli(&url, &["dlq", "show", "record", &id]), 2);
    assert!(err.contains("(10000 bytes)") && err.len() < 400, "{err}");
}

#[tokio::test]
async fn dlq_and_stats_keep_working_around_corrupt_entries() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    let broker = client.broker().unwrap();
    let keys = broker.keys("permanent");
    let id = Permanent { seq: 1 }
        .enqueue(&client)
        .await
        .unwrap()
        .to_string();
    let jobs = broker.fetch("permanent", 1, LEASE).await.unwrap().jobs;
    let failure = Failure {
        error: "bad input 1",
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    };
    broker.fail("permanent", &jobs[0], &failure).await.unwrap();
    let mut conn = probe.conn().await;
    let _: () = conn.zadd(&keys.dead, GARBAGE, now_ms()).await.unwrap();
    let _: () = conn.hset(&keys.stats, "completed", "abc").await.unwrap();

    let out = ok(cli(&url, &["dlq", "list", "permanent"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{id} "))),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("<unreadable entry, 8 bytes: ") && l.ends_with('>')),
        "{out}"
    );
    let out = ok(cli(&url, &["dlq", "show", "permanent", &id]));
    assert!(out.contains("error:       bad input 1"), "{out}");

    let output = cli(&url, &["stats", "--topics", "permanent"]);
    let err = stderr(&output);
    let table = ok(output);
    assert!(
        err.contains("`completed`") && err.contains("not integers"),
        "{err}"
    );
    let header = row(&table, "topic");
    let completed = header.iter().position(|h| h == "completed").unwrap();
    assert_eq!(row(&table, "permanent")[completed], "0", "{table}");
    let json = ok(cli(&url, &["stats", "--json", "--topics", "permanent"]));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        parsed[0]["skipped_fields"],
        serde_json::json!(["completed"])
    );
    assert_eq!(parsed[0]["dead"], 2);

    let out = ok(cli(&url, &["dlq", "retry", "permanent", "--all"]));
    assert!(
        out.contains("re-enqueued 1 job(s)") && out.contains("skipped 1 unreadable entry and 0"),
        "{out}"
    );
    let stats = probe.stats("permanent").await;
    assert_eq!(
        (stats.pending[1], stats.dead),
        (1, 1),
        "the corrupt entry stays"
    );
}

#[tokio::test]
async fn parse_errors_list_show_retry_and_purge() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    let broker = client.broker().unwrap();
    let keys = broker.keys("record");
    // A job whose payload an older build could not decode, bytes that are
    // not a job, and a corrupt entry.
    ok(cli(
        &url,
        &["enqueue", "record", r#"{"seq": 5}"#, "--id", "r1"],
    ));
    let job = broker
        .fetch("record", 1, LEASE)
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert!(broker
        .reject("record", &job, "invalid type: an older build")
        .await
        .unwrap());
    let mut conn = probe.conn().await;
    let _: () = conn.rpush(&keys.pending[1], "tiny").await.unwrap();
    assert!(broker
        .fetch("record", 1, LEASE)
        .await
        .unwrap()
        .jobs
        .is_empty());
    let _: () = conn.zadd(&keys.errors, GARBAGE, now_ms()).await.unwrap();

    let out = ok(cli(&url, &["parse-errors", "list", "record"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let line = |needle: &str| {
        *lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{out}"))
    };
    let first = |l: &str| l.split_whitespace().next().unwrap().to_owned();
    assert!(line("older build").starts_with("r1 "), "{out}");
    assert!(line("older build").contains(" job "), "{out}");
    let tiny = first(line("truncated"));
    assert!(tiny.starts_with('@') && tiny.len() == 17, "{out}");
    let corrupt_line = line("<unreadable entry, 8 bytes: ");
    let corrupt = first(corrupt_line);
    assert!(corrupt.starts_with('@'), "{out}");

    let out = ok(cli(&url, &["parse-errors", "show", "record", "r1"]));
    for want in [
        "address:     r1",
        "error:       invalid type: an older build",
        "id:          r1",
        "attempt:     1",
        "\"seq\": 5",
        "escaped:     \"\\x01",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    let out = ok(cli(&url, &["parse-errors", "show", "record", &tiny]));
    assert!(out.contains("size:        4 bytes"), "{out}");
    assert!(out.contains("escaped:     \"tiny\""), "{out}");
    assert!(out.contains("hex:         74 69 6e 79"), "{out}");
    assert!(out.contains("not a job envelope"), "{out}");
    let out = ok(cli(&url, &["parse-errors", "show", "record", &corrupt]));
    assert!(out.contains("cannot be read"), "{out}");
    let err = fails(cli(&url, &["parse-errors", "show", "record", "nope"]), 2);
    assert!(
        err.contains("no job `nope` in the parse-error store"),
        "{err}"
    );

    // Not a job: cannot be retried, and it stops the others given with it.
    let err = fails(cli(&url, &["parse-errors", "retry", "record", &tiny]), 2);
    assert!(err.contains("cannot be retried"), "{err}");
    let err = fails(
        cli(&url, &["parse-errors", "retry", "record", "r1", &corrupt]),
        2,
    );
    assert!(err.contains("cannot be retried"), "{err}");
    let stats = probe.stats("record").await;
    assert_eq!((stats.parse_errors, stats.pending[1]), (3, 0));

    // The job runs once it is retried (this build decodes it).
    let out = ok(cli(&url, &["parse-errors", "retry", "record", "r1"]));
    assert!(out.contains("re-enqueued 1"), "{out}");
    let _worker = Worker::run(&url, &["--topics", "record"], &[]);
    eventually(
        "the retried job to run",
        Duration::from_secs(15),
        || async { (probe.ran("record").await.get(&5) == Some(&1)).then_some(()) },
    )
    .await;

    let out = ok(cli(&url, &["parse-errors", "retry", "record", "--all"]));
    assert!(
        out.contains("re-enqueued 0") && out.contains("skipped 2 entries that are not jobs"),
        "{out}"
    );
    let out = ok(cli(&url, &["parse-errors", "purge", "record"]));
    assert!(out.contains("deleted 2"), "{out}");
    let out = ok(cli(&url, &["parse-errors", "list", "record"]));
    assert!(out.contains("empty"), "{out}");
}

#[tokio::test]
async fn stats_shows_the_other_topics_when_one_topics_keys_are_broken() {
    let redis = RedisServer::start();
    let url = redis.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    Permanent { seq: 1 }.enqueue(&client).await.unwrap();
    Record { seq: 1 }.enqueue(&client).await.unwrap();
    let broken = client
        .broker()
        .unwrap()
        .keys("permanent")
        .processing
        .clone();
    let mut conn = probe.conn().await;
    let _: () = conn.set(&broken, "foreign").await.unwrap();

    let output = cli(&url, &["stats"]);
    let err = stderr(&output);
    let table = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("topic `permanent` left out") && err.contains(&broken),
        "{err}"
    );
    let header = row(&table, "topic");
    let normal = header.iter().position(|h| h == "normal").unwrap();
    assert_eq!(row(&table, "record")[normal], "1", "{table}");
}

#[tokio::test]
async fn search_finds_text_and_ids_and_purge_asks_first() {
    let server = RedisServer::start();
    let url = server.url();
    let client = Probe::new(url.clone()).client().await;
    client
        .enqueue_many((0..30).map(|seq| Record { seq }))
        .await
        .unwrap();
    Record { seq: 987_654 }
        .job_id("needle-job")
        .enqueue(&client)
        .await
        .unwrap();

    let found = ok(cli(&url, &["search", "987654"]));
    let lines: Vec<&str> = found.lines().collect();
    assert_eq!(lines.len(), 2, "{found}");
    assert!(lines[0].starts_with("record"), "{found}");
    assert!(lines[0].contains("needle-job"), "{found}");
    assert!(lines[0].contains("987654"), "{found}");
    assert_eq!(lines[1], "1 match(es) in 31 entries");
    let by_id = ok(cli(
        &url,
        &["search", "--id", "needle-job", "--topic", "record"],
    ));
    assert!(by_id.contains("normal"), "{by_id}");
    let limited = ok(cli(&url, &["search", "seq", "--limit", "3"]));
    assert_eq!(limited.lines().count(), 4, "{limited}");

    let refused = fails(cli(&url, &["purge", "record", "normal"]), 2);
    assert!(refused.contains("31 normal job(s)"), "{refused}");
    assert!(refused.contains("--yes"), "{refused}");
    let purged = ok(cli(&url, &["purge", "record", "normal", "--yes"]));
    assert_eq!(purged.trim(), "deleted 31 normal job(s) of `record`");
    let bad = fails(cli(&url, &["purge", "record", "sideways", "--yes"]), 2);
    assert!(bad.contains("unknown state"), "{bad}");
    let running = fails(cli(&url, &["purge", "record", "processing", "--yes"]), 2);
    assert!(running.contains("cannot purge"), "{running}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_shows_a_kept_result_and_chain_shows_each_step() {
    let server = RedisServer::start();
    let url = server.url();
    let probe = Probe::new(url.clone());
    let client = probe.client().await;
    let _worker = Worker::run(&url, &["--topics", "square,plan_square"], &[]);

    // Enqueued here, run by the worker process, read by a client of its own
    // and by the command line.
    let job = rmq_it::Square { n: 12 }.enqueue(&client).await.unwrap();
    assert_eq!(
        job.result_timeout(Duration::from_secs(15)).await.unwrap(),
        144
    );
    let reader = probe.client().await;
    assert_eq!(
        reader
            .result::<u64>("square", job.id().as_str())
            .await
            .unwrap(),
        Some(144)
    );
    let out = ok(cli(&url, &["tasks"]));
    assert!(
        out.contains("keeps results for 1h (`job square <id>`"),
        "{out}"
    );
    let out = ok(cli(&url, &["job", "square", job.id().as_str()]));
    assert!(out.contains("state:       completed"), "{out}");
    assert!(out.contains("result:\n144"), "{out}");

    let chain = rmq_it::PlanSquare { n: 2 }
        .then_result::<rmq_it::Square>()
        .chain_id("cli-chain")
        .enqueue(&client)
        .await
        .unwrap();
    assert_eq!(chain.result().await.unwrap(), 9);
    let out = ok(cli(&url, &["chain", "cli-chain"]));
    assert!(out.contains("state:       completed"), "{out}");
    assert!(out.contains("plan_square"), "{out}");
    assert!(out.contains("chain:cli-chain:1"), "{out}");
    let out = ok(cli(&url, &["job", "square", "chain:cli-chain:1"]));
    assert!(out.contains("chain:       cli-chain, step 1"), "{out}");
    assert!(out.contains("result:\n9"), "{out}");
    let err = fails(cli(&url, &["chain", "nope"]), 2);
    assert!(err.contains("no chain `nope`"), "{err}");
}
