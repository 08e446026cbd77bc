//! The schedules page against a real Redis: every topic's cron schedules
//! with their expression, time zone, next fire and pause; pause, resume
//! and run now change Redis as their messages say, behind the CSRF check
//! and read-only mode.

mod common;

use axum::http::{header, StatusCode};
use axum::Router;
use rmq::broker::{ScheduleSpec, State};
use rmq::{CronClock, Priority, TaskError};
use rmq_web::Options;

use common::{assert_csp_clean, attr, cells, csrf_token, get, post, Env, Reply, XSS};

const TOPIC: &str = "sc-reports";

/// Links the topic in, so the dashboard lists it before anything was
/// enqueued (as for a worker that serves it).
#[rmq::task(topic = "sc-reports", cron = "0 0 3 * * *", tz = "Europe/Berlin")]
async fn reports() -> Result<(), TaskError> {
    Ok(())
}

async fn with_schedule(name: &str) -> Env {
    let env = Env::new().await;
    let spec = ScheduleSpec::new("0 0 3 * * *", "Europe/Berlin");
    env.broker
        .set_schedule(TOPIC, name, &spec, &[0x80], CronClock::SERVER)
        .await
        .unwrap();
    env
}

fn row(html: &str, name: &str) -> Vec<String> {
    let marker = format!("<tr data-schedule=\"{name}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no row {name} in {html}"));
    let row = &html[at..];
    cells(&row[..row.find("</tr>").unwrap()])
}

async fn act(app: &Router, command: &str, name: &str, htmx: bool) -> Reply {
    let token = csrf_token(&get(app, "/schedules").await.body);
    let form = (
        header::CONTENT_TYPE.as_str(),
        "application/x-www-form-urlencoded",
    );
    let mut headers = vec![form, ("x-csrf-token", token.as_str())];
    if htmx {
        headers.push(("hx-request", "true"));
    }
    let body = format!("topic={TOPIC}&name={name}");
    post(app, &format!("/schedules/{command}"), &headers, &body).await
}

async fn paused(env: &Env, name: &str) -> bool {
    env.broker
        .schedules(TOPIC)
        .await
        .unwrap()
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .paused
}

#[tokio::test]
async fn the_page_lists_schedules_and_the_buttons_act() {
    let env = with_schedule("nightly").await;
    let app = env.app(Options::new());
    let page = get(&app, "/schedules").await.ok();
    assert_csp_clean(&page, "schedules");
    let cells = row(&page, "nightly");
    assert_eq!(
        cells[..4],
        ["nightly", TOPIC, "0 0 3 * * *", "Europe/Berlin"]
    );
    assert!(cells[4].starts_with("20"), "a next fire time: {cells:?}");
    assert!(cells[4].contains("in "), "{cells:?}");
    assert_eq!(cells[5], "-", "never fired: {cells:?}");
    assert_eq!(cells[6], "no");
    assert!(page.contains("class=\"pause-schedule\""), "{page}");
    assert!(
        attr(&page, "action=\"/schedules/pause\"", "hx-confirm")
            .starts_with("Pause schedule nightly"),
        "{page}"
    );

    let reply = act(&app, "pause", "nightly", true).await;
    assert_eq!(reply.headers.get("hx-trigger").unwrap(), "rmq-changed");
    let message = reply.ok();
    assert!(
        message.contains("paused schedule nightly of topic sc-reports"),
        "{message}"
    );
    assert!(paused(&env, "nightly").await);
    let again = act(&app, "pause", "nightly", true).await.ok();
    assert!(again.contains("was already paused"), "{again}");
    let live = get(&app, "/schedules?part=live").await.ok();
    assert_eq!(row(&live, "nightly")[6], "paused");
    assert!(live.contains("class=\"resume-schedule\""), "{live}");

    // A plain form: the page with the message.
    let page = act(&app, "resume", "nightly", false).await.ok();
    assert!(page.contains("<html"), "{page}");
    assert!(
        page.contains("resumed schedule nightly of topic sc-reports"),
        "{page}"
    );
    assert!(!paused(&env, "nightly").await);

    let normal = State::Pending(Priority::Normal);
    assert_eq!(env.broker.depth(TOPIC, normal).await.unwrap(), 0);
    let message = act(&app, "trigger", "nightly", true).await.ok();
    assert!(message.contains("enqueued cron:nightly:now:"), "{message}");
    assert!(message.contains("from schedule nightly"), "{message}");
    assert_eq!(env.broker.depth(TOPIC, normal).await.unwrap(), 1);

    let unknown = act(&app, "pause", "nope", true)
        .await
        .status(StatusCode::NOT_FOUND);
    assert!(unknown.contains("no such schedule"), "{unknown}");
}

#[tokio::test]
async fn names_are_escaped() {
    let env = with_schedule(XSS).await;
    let app = env.app(Options::new());
    let page = get(&app, "/schedules").await.ok();
    assert!(!page.contains(XSS), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
}

#[tokio::test]
async fn actions_need_the_csrf_token_and_read_only_refuses_them() {
    let env = with_schedule("nightly").await;
    let form = (
        header::CONTENT_TYPE.as_str(),
        "application/x-www-form-urlencoded",
    );
    let body = format!("topic={TOPIC}&name=nightly");
    let app = env.app(Options::new());
    for command in ["pause", "resume", "trigger"] {
        let path = format!("/schedules/{command}");
        let refused = post(&app, &path, &[form, ("hx-request", "true")], &body)
            .await
            .status(StatusCode::FORBIDDEN);
        assert!(refused.contains("no CSRF token"), "{command}: {refused}");
        let wrong = post(&app, &path, &[form], &format!("csrf=00&{body}"))
            .await
            .status(StatusCode::FORBIDDEN);
        assert!(wrong.contains("CSRF token is wrong"), "{command}: {wrong}");
    }

    let app = env.app(Options::new().read_only(true));
    let page = get(&app, "/schedules").await.ok();
    assert_eq!(row(&page, "nightly")[0], "nightly");
    assert!(!page.contains("<form"), "{page}");
    assert!(!page.contains("<button"), "{page}");
    for command in ["pause", "resume", "trigger"] {
        let refused = act(&app, command, "nightly", true)
            .await
            .status(StatusCode::FORBIDDEN);
        assert!(refused.contains("read-only"), "{command}: {refused}");
    }
    assert!(!paused(&env, "nightly").await);
    let normal = State::Pending(Priority::Normal);
    assert_eq!(env.broker.depth(TOPIC, normal).await.unwrap(), 0);
}
