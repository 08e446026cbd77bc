//! Limits on the dashboard against a real Redis: the tasks page shows
//! each task's rate, concurrency, rate key, uniqueness and cron schedule;
//! the topics page says when a limit held a fetch back just now.

mod common;

use rmq::{Limits, TaskError};
use rmq_web::Options;

use common::{cells, get, Env, LEASE};

#[rmq::task(topic = "lm-api", rate = "50/s", concurrency = 2, rate_key = "tenant")]
async fn call_api(tenant: String) -> Result<(), TaskError> {
    let _ = tenant;
    Ok(())
}

#[rmq::task(topic = "lm-report", unique(key = [user], mode = window, ttl = "1h"))]
async fn report(user: String) -> Result<(), TaskError> {
    let _ = user;
    Ok(())
}

#[rmq::task(topic = "lm-nightly", cron = "0 0 3 * * *", tz = "Europe/Berlin")]
async fn nightly() -> Result<(), TaskError> {
    Ok(())
}

/// The cells of the row whose `data-topic` is `topic`.
fn row(html: &str, topic: &str) -> Vec<String> {
    let marker = format!("<tr data-topic=\"{topic}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no row {topic} in {html}"));
    let row = &html[at..];
    cells(&row[..row.find("</tr>").unwrap()])
}

#[tokio::test]
async fn the_tasks_page_shows_limits_uniqueness_and_cron() {
    let env = Env::new().await;
    let app = env.app(Options::new());
    let page = get(&app, "/tasks").await.ok();
    let api = row(&page, "lm-api");
    assert_eq!(api[8], "50/s, concurrency 2, per tenant", "{api:?}");
    assert_eq!(api[9..], ["-", "-"], "{api:?}");
    let report = row(&page, "lm-report");
    assert_eq!(report[8], "-", "{report:?}");
    assert_eq!(report[9], "window 1h 0m on user", "{report:?}");
    let nightly = row(&page, "lm-nightly");
    assert!(
        nightly[10].starts_with("0 0 3 * * * Europe/Berlin · overlap"),
        "{nightly:?}"
    );
}

#[tokio::test]
async fn the_topics_page_says_when_a_limit_holds_fetches_back() {
    let env = Env::new().await;
    for user in ["u1", "u2", "u3"] {
        Report { user: user.into() }
            .enqueue(&env.client)
            .await
            .unwrap();
    }
    let app = env.app(Options::new());
    let page = get(&app, "/topics").await.ok();
    assert_eq!(row(&page, "lm-report").last().unwrap(), "-");

    let limits = Limits {
        concurrency: Some(1),
        ..Limits::NONE
    };
    let first = env
        .broker
        .fetch_limited("lm-report", 1, LEASE, &limits)
        .await
        .unwrap();
    assert_eq!(first.jobs.len(), 1);
    let held = env
        .broker
        .fetch_limited("lm-report", 1, LEASE, &limits)
        .await
        .unwrap();
    assert!(held.jobs.is_empty(), "{held:?}");
    let page = get(&app, "/topics").await.ok();
    assert_eq!(
        row(&page, "lm-report").last().unwrap(),
        "by concurrency",
        "{page}"
    );
    assert!(
        page.contains("by the concurrency limit 1 times"),
        "the counts in the title: {page}"
    );
}
