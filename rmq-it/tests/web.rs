//! `worker web` as a real process: the dashboard and `/metrics` on one
//! loopback port, auth from the environment, the refusal of an open
//! address without auth, and a graceful stop on SIGTERM.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::{cli, eventually, http_get, Probe};
use rmq_it::Record;
use rmq_testkit::{free_port, RedisServer};

/// A `worker web` process, killed on drop.
struct Web(Child);

impl Web {
    fn start(url: &str, port: u16, env: &[(&str, &str)]) -> Web {
        let listen = format!("127.0.0.1:{port}");
        Web(common::command(url, &["web", "--listen", &listen], env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start worker web"))
    }
}

impl Drop for Web {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn answers(port: u16) {
    eventually(
        "the dashboard to answer",
        Duration::from_secs(20),
        || async { http_get(port, "/healthz", &[]).filter(|r| r.status == 200) },
    )
    .await;
}

#[tokio::test]
async fn serves_the_dashboard_and_metrics_and_stops_on_sigterm() {
    let server = RedisServer::start();
    let probe = Probe::new(server.url());
    let client = probe.client().await;
    client
        .enqueue_many((0..3).map(|seq| Record { seq }))
        .await
        .unwrap();
    let port = free_port();
    let mut web = Web::start(&server.url(), port, &[]);
    answers(port).await;

    let page = http_get(port, "/topics", &[]).expect("the topics page");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .head
        .contains("content-security-policy: default-src 'none'"));
    assert!(page.body.contains("record"), "{}", page.body);

    let ok = cli(&server.url(), &["pause", "record"]);
    assert_eq!(ok.status.code(), Some(0));
    let metrics = http_get(port, "/metrics", &[]).expect("metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .contains("rmq_queue_jobs{topic=\"record\",state=\"pending\",priority=\"normal\"} 3"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("rmq_queue_paused{topic=\"record\"} 1"),
        "{}",
        metrics.body
    );

    // SAFETY: signalling a child this test owns.
    unsafe { libc::kill(web.0.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || {
        let status = web.0.wait();
        (web, status)
    })
    .await
    .unwrap()
    .1
    .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_token_from_the_environment_guards_every_page() {
    let server = RedisServer::start();
    let port = free_port();
    let _web = Web::start(&server.url(), port, &[("RMQ_WEB_TOKEN", "s3cret-token")]);
    answers(port).await;
    let refused = http_get(port, "/", &[]).expect("answer");
    assert_eq!(refused.status, 401);
    let metrics = http_get(port, "/metrics", &[]).expect("answer");
    assert_eq!(metrics.status, 401, "metrics are behind the same auth");
    let page = http_get(port, "/", &["Authorization: Bearer s3cret-token"]).expect("answer");
    assert_eq!(page.status, 200);
}

#[test]
fn an_open_address_without_auth_is_refused_before_anything_is_served() {
    // The address is checked before it is bound: nothing listens on it.
    let output = common::cli_env(
        "redis://127.0.0.1:1",
        &["web", "--listen", "0.0.0.0:9090"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("RMQ_WEB_TOKEN"), "{stderr}");
}
