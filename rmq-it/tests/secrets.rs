//! Secrets never appear in logs (even at `RUST_LOG=trace`), errors, Debug
//! output or CLI output, including passwords that hold URL delimiters.

mod common;

use std::time::Duration;

use common::{cli_env, eventually, Probe, Worker};
use rmq::{Broker, Config};
use rmq_testkit::{free_port, Options, RedisServer};

/// The server's password, raw and percent-encoded for a URL.
const SECRET: &str = "p/a#s?s@w:rd";
const ENCODED: &str = "p%2Fa%23s%3Fs%40w%3Ard";
/// A wrong password of the same kind.
const WRONG: &str = "wr/o#n?g@p:w";
const WRONG_ENCODED: &str = "wr%2Fo%23n%3Fg%40p%3Aw";

#[track_caller]
fn assert_no_secret(what: &str, text: &str) {
    for secret in [SECRET, ENCODED, WRONG, WRONG_ENCODED, "a#s?s", "o#n?g"] {
        assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
    }
}

/// Runs the CLI at `RUST_LOG=trace`; checks its output for secrets and
/// returns (exit code, stdout + stderr).
#[track_caller]
fn run_cli(url: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut all = vec![("RUST_LOG", "trace")];
    all.extend_from_slice(env);
    let out = cli_env(url, args, &all);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&format!("`{}`", args.join(" ")), &text);
    (out.status.code(), text)
}

fn server() -> RedisServer {
    RedisServer::with(Options {
        password: Some(SECRET.to_owned()),
        ..Options::default()
    })
}

#[test]
fn failing_commands_print_no_password() {
    let server = server();
    let port = server.port();
    let plain = server.url();
    let encoded = format!("redis://:{ENCODED}@127.0.0.1:{port}");

    // A wrong database, with the password from the environment and in
    // the URL.
    let (code, out) = run_cli(
        &plain,
        &["stats"],
        &[("REDIS_PASSWORD", SECRET), ("REDIS_DB", "99999")],
    );
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("database was refused"), "{out}");
    let (code, out) = run_cli(&encoded, &["run"], &[("REDIS_DB", "99999")]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains(":***@"), "{out}");

    // Nothing listens on the port.
    let refused = format!("redis://user:{ENCODED}@127.0.0.1:{}", free_port());
    let (code, out) = run_cli(&refused, &["stats"], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("redis://user:***@127.0.0.1"), "{out}");

    // A wrong password, encoded and raw (the raw one breaks the URL).
    let wrong = format!("redis://:{WRONG_ENCODED}@127.0.0.1:{port}");
    let (code, out) = run_cli(&wrong, &["run"], &[]);
    assert_eq!(code, Some(2), "{out}");
    let (code, out) = run_cli(
        &plain,
        &["dlq", "list", "record"],
        &[("REDIS_PASSWORD", WRONG)],
    );
    assert_eq!(code, Some(2), "{out}");
    let raw = format!("redis://:{SECRET}@127.0.0.1:{port}/0");
    let (code, out) = run_cli(&raw, &["stats"], &[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("percent-encoded"), "{out}");
    // No scheme at all.
    let (code, out) = run_cli(&format!(":{SECRET}@127.0.0.1:{port}"), &["stats"], &[]);
    assert_eq!(code, Some(2), "{out}");
}

#[tokio::test]
async fn working_commands_and_a_worker_at_trace_print_no_password() {
    let server = server();
    let port = server.port();
    let plain = server.url();
    let encoded = format!("redis://:{ENCODED}@127.0.0.1:{port}");

    let (code, out) = run_cli(
        &plain,
        &["enqueue", "record", r#"{"seq": 1}"#],
        &[("REDIS_PASSWORD", SECRET)],
    );
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run_cli(&encoded, &["enqueue", "record", r#"{"seq": 2}"#], &[]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run_cli(&encoded, &["stats", "--json"], &[]);
    assert_eq!(code, Some(0), "{out}");

    let probe = Probe::new(encoded.clone());
    let mut worker = Worker::run(&encoded, &["--topics", "record"], &[("RUST_LOG", "trace")]);
    eventually("both jobs to run", Duration::from_secs(15), || async {
        (probe.ran("record").await.len() == 2).then_some(())
    })
    .await;
    worker.signal(libc::SIGTERM);
    worker.exited(Duration::from_secs(15)).await;
    let log = worker.log();
    assert!(log.contains("worker stopped"), "{log}");
    assert_no_secret("the worker's log", &log);
}

#[tokio::test]
async fn debug_output_and_errors_show_no_password() {
    let server = server();
    let port = server.port();
    let mut config = Config::default();
    config.redis_url = format!("redis://user:{ENCODED}@127.0.0.1:{port}/0");
    config.redis_password = Some(SECRET.to_owned());
    assert_no_secret("Config's Debug", &format!("{config:?}"));
    assert_no_secret("Config's pretty Debug", &format!("{config:#?}"));

    let mut failures = Vec::new();
    let mut wrong_db = config.clone();
    wrong_db.redis_username = Some("default".to_owned());
    wrong_db.redis_db = Some(99_999);
    failures.push(wrong_db);
    let mut refused = config.clone();
    refused.redis_url = format!("redis://user:{ENCODED}@127.0.0.1:{}/0", free_port());
    failures.push(refused);
    let mut wrong_password = config.clone();
    wrong_password.redis_url = format!("redis://:{WRONG_ENCODED}@127.0.0.1:{port}");
    wrong_password.redis_password = None;
    failures.push(wrong_password);
    let mut invalid = config.clone();
    invalid.redis_url = format!("redis://:{SECRET}@127.0.0.1:{port}");
    invalid.max_workers = 0;
    failures.push(invalid);
    let mut bad_scheme = config.clone();
    bad_scheme.redis_url = format!("http://:{SECRET}@127.0.0.1:{port}");
    failures.push(bad_scheme);
    for config in failures {
        let err = match config.validate() {
            Err(err) => err,
            Ok(()) => Broker::connect(&config)
                .await
                .expect_err("this configuration cannot connect"),
        };
        assert_no_secret("an error's Display", &err.to_string());
        assert_no_secret("an error's Debug", &format!("{err:?}"));
    }

    // And one that works, for contrast.
    let mut ok = config.clone();
    ok.redis_username = Some("default".to_owned());
    let broker = Broker::connect(&ok).await.expect("the right password");
    assert_no_secret("Broker's Debug", &format!("{broker:?}"));
}
