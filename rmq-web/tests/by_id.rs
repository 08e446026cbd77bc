//! Status by id and cancel against a real Redis: the job detail and the
//! exact-id search show the job's status by id, the detail a Cancel button
//! for queued and running jobs; cancelling removes a queued job, signals a
//! running one, says which, and is guarded by the CSRF check and read-only
//! mode.

mod common;

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::Router;
use rmq::broker::State;
use rmq::{JobState, Priority, TaskError};
use rmq_web::Options;

use common::{assert_csp_clean, attr, csrf_token, get, post, Env, Reply, LEASE, XSS};

#[rmq::task(topic = "cx-jobs", index = true, retries = 2)]
async fn crunch(item: String) -> Result<(), TaskError> {
    let _ = item;
    Ok(())
}

/// A topic whose jobs are not indexed.
#[rmq::task(topic = "cx-plain")]
async fn plain(item: String) -> Result<(), TaskError> {
    let _ = item;
    Ok(())
}

const TOPIC: &str = "cx-jobs";

async fn locator(env: &Env, topic: &str, state: State) -> String {
    env.broker.entries(topic, state, 0, 10).await.unwrap()[0]
        .locator()
        .to_string()
}

async fn act(app: &Router, path: &str, body: &str, htmx: bool) -> Reply {
    let token = csrf_token(&get(app, "/topics").await.body);
    let form = (
        header::CONTENT_TYPE.as_str(),
        "application/x-www-form-urlencoded",
    );
    let mut headers = vec![form, ("x-csrf-token", token.as_str())];
    if htmx {
        headers.push(("hx-request", "true"));
    }
    post(app, path, &headers, body).await
}

fn detail(topic: &str, locator: &str) -> String {
    format!("/topics/{topic}/entries/{locator}")
}

#[tokio::test]
async fn cancel_removes_a_pending_job_and_says_so() {
    let env = Env::new().await;
    let id = Crunch { item: XSS.into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    let app = env.app(Options::new());
    let normal = State::Pending(Priority::Normal);
    let page = get(&app, &detail(TOPIC, &locator(&env, TOPIC, normal).await))
        .await
        .ok();
    assert_csp_clean(&page, "detail");
    assert!(!page.contains(XSS), "payload escaped: {page}");
    assert_eq!(attr(&page, "id=\"status-state\"", "data-state"), "pending");
    assert!(page.contains("id=\"status-position\">0<"), "{page}");
    assert!(page.contains("id=\"cancel-entry\""), "{page}");
    assert_eq!(attr(&page, "name=\"id\"", "value"), id.as_str());
    assert!(
        attr(&page, "action=\"/topics/cx-jobs/cancel\"", "hx-confirm").starts_with("Cancel job"),
        "{page}"
    );

    let list = get(&app, "/topics/cx-jobs?state=normal").await.ok();
    assert!(
        list.contains("<button class=\"cancel-one danger\" type=\"submit\">Cancel</button>"),
        "a row's Cancel: {list}"
    );

    let body = format!("id={id}");
    let reply = act(&app, "/topics/cx-jobs/cancel", &body, true).await;
    assert_eq!(
        reply.headers.get("hx-trigger").unwrap(),
        "rmq-changed",
        "the detail reloads"
    );
    let message = reply.ok();
    assert!(
        message.contains(&format!("cancelled job {id} of topic cx-jobs: removed")),
        "{message}"
    );
    assert_eq!(env.broker.depth(TOPIC, normal).await.unwrap(), 0);
    let status = env
        .broker
        .status(TOPIC, id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(status.state, JobState::Cancelled { .. }),
        "{status:?}"
    );

    // Again: it has ended.
    let again = act(&app, "/topics/cx-jobs/cancel", &body, true).await.ok();
    assert!(again.contains("had already ended"), "{again}");
    // Unknown: 404, said in words.
    let unknown = act(&app, "/topics/cx-jobs/cancel", "id=nope", true)
        .await
        .status(StatusCode::NOT_FOUND);
    assert!(
        unknown.contains("job nope of topic cx-jobs not found"),
        "{unknown}"
    );
    // No id: 400.
    let empty = act(&app, "/topics/cx-jobs/cancel", "id=", true)
        .await
        .status(StatusCode::BAD_REQUEST);
    assert!(empty.contains("no job id"), "{empty}");
}

#[tokio::test]
async fn cancel_removes_a_delayed_job_and_a_plain_form_gets_the_topic_page() {
    let env = Env::new().await;
    let id = Crunch { item: "d".into() }
        .delay(Duration::from_secs(3600))
        .enqueue(&env.client)
        .await
        .unwrap();
    let app = env.app(Options::new());
    let page = get(
        &app,
        &detail(TOPIC, &locator(&env, TOPIC, State::Delayed).await),
    )
    .await
    .ok();
    assert_eq!(attr(&page, "id=\"status-state\"", "data-state"), "delayed");
    assert!(page.contains("id=\"cancel-entry\""), "{page}");
    let page = act(&app, "/topics/cx-jobs/cancel", &format!("id={id}"), false)
        .await
        .ok();
    assert!(page.contains("<html"), "{page}");
    assert!(page.contains("removed from the queue"), "{page}");
    assert_eq!(env.broker.depth(TOPIC, State::Delayed).await.unwrap(), 0);
}

#[tokio::test]
async fn cancel_signals_a_running_job() {
    let env = Env::new().await;
    let id = Crunch { item: "r".into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    env.broker.fetch(TOPIC, 1, LEASE).await.unwrap();
    let app = env.app(Options::new());
    let href = detail(TOPIC, &locator(&env, TOPIC, State::Processing).await);
    let page = get(&app, &href).await.ok();
    assert_eq!(
        attr(&page, "id=\"status-state\"", "data-state"),
        "processing"
    );
    assert!(
        page.contains("id=\"status-cancel-requested\">no<"),
        "{page}"
    );
    assert!(page.contains("id=\"cancel-entry\""), "{page}");
    assert!(
        attr(&page, "action=\"/topics/cx-jobs/cancel\"", "hx-confirm").contains("asked to stop"),
        "{page}"
    );

    let list = get(&app, "/topics/cx-jobs?state=processing").await.ok();
    assert!(list.contains("cancel-one danger"), "{list}");

    let body = format!("id={id}");
    let message = act(&app, "/topics/cx-jobs/cancel", &body, true).await.ok();
    assert!(
        message.contains(&format!("asked job {id} of topic cx-jobs to stop")),
        "{message}"
    );
    let status = env
        .broker
        .status(TOPIC, id.as_str())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            status.state,
            JobState::Processing {
                cancel_requested: true,
                ..
            }
        ),
        "{status:?}"
    );
    let page = get(&app, &href).await.ok();
    assert!(
        page.contains("id=\"status-cancel-requested\">yes"),
        "{page}"
    );
    let again = act(&app, "/topics/cx-jobs/cancel", &body, true).await.ok();
    assert!(again.contains("was already asked to stop"), "{again}");
    assert_eq!(env.broker.depth(TOPIC, State::Processing).await.unwrap(), 1);
}

#[tokio::test]
async fn a_job_not_indexed_says_so_and_cancel_cannot_find_it_queued() {
    let env = Env::new().await;
    let id = Plain { item: "p".into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    let app = env.app(Options::new());
    let normal = State::Pending(Priority::Normal);
    let page = get(
        &app,
        &detail("cx-plain", &locator(&env, "cx-plain", normal).await),
    )
    .await
    .ok();
    assert!(page.contains("id=\"status-none\""), "{page}");
    assert!(
        !page.contains("cancel-entry"),
        "cancel would not find it: {page}"
    );
    let list = get(&app, "/topics/cx-plain?state=normal").await.ok();
    assert!(!list.contains("cancel-one"), "{list}");
    let refused = act(&app, "/topics/cx-plain/cancel", &format!("id={id}"), true)
        .await
        .status(StatusCode::NOT_FOUND);
    assert!(refused.contains("not indexed by id"), "{refused}");
    assert_eq!(env.broker.depth("cx-plain", normal).await.unwrap(), 1);
}

#[tokio::test]
async fn cancel_needs_the_csrf_token_and_is_refused_read_only() {
    let env = Env::new().await;
    let id = Crunch { item: "g".into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    let normal = State::Pending(Priority::Normal);
    let body = format!("id={id}");
    let form = (
        header::CONTENT_TYPE.as_str(),
        "application/x-www-form-urlencoded",
    );

    let app = env.app(Options::new());
    let refused = post(
        &app,
        "/topics/cx-jobs/cancel",
        &[form, ("hx-request", "true")],
        &body,
    )
    .await
    .status(StatusCode::FORBIDDEN);
    assert!(refused.contains("no CSRF token"), "{refused}");
    let wrong = post(
        &app,
        "/topics/cx-jobs/cancel",
        &[form],
        &format!("csrf=00&{body}"),
    )
    .await
    .status(StatusCode::FORBIDDEN);
    assert!(wrong.contains("CSRF token is wrong"), "{wrong}");

    let app = env.app(Options::new().read_only(true));
    let page = get(&app, &detail(TOPIC, &locator(&env, TOPIC, normal).await))
        .await
        .ok();
    assert!(!page.contains("cancel-entry"), "{page}");
    assert!(!page.contains("<form"), "{page}");
    assert_eq!(attr(&page, "id=\"status-state\"", "data-state"), "pending");
    let refused = act(&app, "/topics/cx-jobs/cancel", &body, true)
        .await
        .status(StatusCode::FORBIDDEN);
    assert!(refused.contains("read-only"), "{refused}");
    assert_eq!(env.broker.depth(TOPIC, normal).await.unwrap(), 1);
}

#[tokio::test]
async fn an_exact_id_search_shows_the_status_by_id() {
    let env = Env::new().await;
    let id = Crunch { item: "s".into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    Crunch { item: "t".into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    env.broker.fetch(TOPIC, 1, LEASE).await.unwrap();
    env.broker.cancel(TOPIC, id.as_str()).await.unwrap();
    let app = env.app(Options::new());
    let page = get(&app, &format!("/search?q={id}&mode=id")).await.ok();
    assert_csp_clean(&page, "search");
    let state = attr(&page, "class=\"by-id-state\"", "data-state");
    assert_eq!(state, "processing", "{page}");
    assert!(page.contains(" · cancel requested"), "{page}");
    assert!(
        page.contains("href=\"/topics/cx-jobs?state=processing&amp;page=1\""),
        "{page}"
    );
    let none = get(&app, "/search?q=nope&mode=id&topic=cx-jobs").await.ok();
    assert!(none.contains("id=\"by-id-none\""), "{none}");
    let text = get(&app, &format!("/search?q={id}")).await.ok();
    assert!(
        !text.contains("id=\"by-id\""),
        "text search reads no index: {text}"
    );
}
