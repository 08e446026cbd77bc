//! What Redis refuses at connect time (ACL permissions, credentials) stops
//! the worker at once with exit code 2 and says what to change; it is never
//! retried as "Redis is not reachable yet".

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{cli, cli_env, Probe};
use rmq::{Broker, Config, Error};
use rmq_testkit::RedisServer;

/// Runs `args` and asserts exit code 2 within a few seconds; returns stderr.
fn refused(output: impl FnOnce() -> Output) -> String {
    let started = Instant::now();
    let output = output();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}, was it retried? {stderr}",
        started.elapsed()
    );
    assert!(!stderr.contains("retrying"), "{stderr}");
    stderr
}

async fn acl(server: &RedisServer, rules: &[&str]) {
    let mut conn = Probe::new(server.url()).conn().await;
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(rules)
        .query_async(&mut conn)
        .await
        .expect("ACL SETUSER");
}

#[tokio::test]
async fn an_acl_user_without_scripting_stops_the_worker_with_what_to_grant() {
    let server = RedisServer::start();
    acl(
        &server,
        &["limited", "on", ">pw", "~*", "+@all", "-@scripting"],
    )
    .await;
    let url = format!("redis://limited:pw@127.0.0.1:{}", server.port());

    let err = refused(|| cli(&url, &["run"]));
    assert!(
        err.contains("the ACL user `limited` may not run `script load`"),
        "{err}"
    );
    assert!(
        err.contains("ACL SETUSER limited +@read +@write +@scripting"),
        "{err}"
    );
    assert!(!err.contains(":pw@"), "password leaked: {err}");

    // The user name given apart from the URL is the one named.
    let plain = format!("redis://127.0.0.1:{}", server.port());
    let err = refused(|| {
        cli_env(
            &plain,
            &["stats"],
            &[("REDIS_USERNAME", "limited"), ("REDIS_PASSWORD", "pw")],
        )
    });
    assert!(err.contains("ACL user `limited`"), "{err}");

    let mut config = Config::default();
    config.redis_url = url;
    let err = Broker::connect(&config).await.expect_err("no scripting");
    assert!(matches!(err, Error::Permission { .. }), "{err}");
    assert!(!err.is_transient(), "{err}");
}

#[tokio::test]
async fn an_acl_user_without_info_is_told_so() {
    let server = RedisServer::start();
    acl(&server, &["noinfo", "on", ">pw", "~*", "+@all", "-info"]).await;
    let url = format!("redis://noinfo:pw@127.0.0.1:{}", server.port());
    let err = refused(|| cli(&url, &["run"]));
    assert!(
        err.contains("the ACL user `noinfo` may not run `info`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_password_or_a_disabled_user_stops_at_once() {
    let server = RedisServer::start();
    acl(&server, &["off-user", "off", ">pw", "~*", "+@all"]).await;
    acl(&server, &["someone", "on", ">right", "~*", "+@all"]).await;

    let url = format!("redis://someone:wrong@127.0.0.1:{}", server.port());
    let err = refused(|| cli(&url, &["run"]));
    assert!(err.contains("password was rejected"), "{err}");
    assert!(!err.contains("wrong"), "password leaked: {err}");

    let url = format!("redis://off-user:pw@127.0.0.1:{}", server.port());
    let err = refused(|| cli(&url, &["run"]));
    assert!(err.contains("rejected"), "{err}");
}

#[test]
fn unreachable_redis_is_still_retried_by_run() {
    // The contrast: nothing listens, which may pass, so `run` keeps
    // retrying (the worker is killed when dropped).
    let url = format!("redis://127.0.0.1:{}", rmq_testkit::free_port());
    let mut worker = common::Worker::run(&url, &[], &[]);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(worker.running(), "run gave up on an unreachable Redis");
    assert!(worker.log().contains("retrying"), "{}", worker.log());
}

#[tokio::test]
async fn a_command_denied_after_connecting_stops_the_worker_naming_it() {
    let server = RedisServer::start();
    // Connecting and loading scripts work; running them, or blocking for
    // new jobs, does not.
    for (user, denied) in [("noeval", "-evalsha"), ("noblock", "-@blocking")] {
        acl(&server, &[user, "on", ">pw", "~*", "+@all", denied]).await;
        let url = format!("redis://{user}:pw@127.0.0.1:{}", server.port());
        let err = refused(|| cli(&url, &["run"]));
        assert!(
            err.contains(&format!("the ACL user `{user}` may not run")),
            "{err}"
        );
        assert!(err.contains("ACL SETUSER"), "{err}");
    }
}
