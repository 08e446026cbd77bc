//! The topic page, the job detail and the entry actions against a real
//! Redis: every state's tab lists its jobs in order, pages hold 50, the
//! detail shows the payload escaped, each action changes Redis as its
//! message says, and CSRF and read-only mode guard every action.

mod common;

use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::Router;
use rmq::broker::{EnqueueSpec, Failure, NewJob, RunningJob, State, WorkerInfo, WorkerState};
use rmq::{Client, Priority, TaskError};
use rmq_web::Options;

use common::{
    assert_csp_clean, attr, cells, csrf_token, get, now_ms, post, Env, Reply, LEASE, XSS,
};

#[rmq::task(topic = "tp-orders", retries = 2)]
async fn place_order(item: String) -> Result<(), TaskError> {
    let _ = item;
    Ok(())
}

const TOPIC: &str = "tp-orders";
/// A topic with no task linked in.
const BARE: &str = "tp-bare";
const WORKER: &str = "tp-host-77-xyz";

const HIGH: State = State::Pending(Priority::High);
const NORMAL: State = State::Pending(Priority::Normal);
const LOW: State = State::Pending(Priority::Low);

fn order(item: &str) -> PlaceOrder {
    PlaceOrder { item: item.into() }
}

impl Env {
    async fn enqueue(&self, item: &str, priority: Priority) {
        order(item)
            .priority(priority)
            .enqueue(&self.client)
            .await
            .unwrap();
    }

    async fn delayed(&self, item: &str, delay: Duration) {
        order(item)
            .delay(delay)
            .enqueue(&self.client)
            .await
            .unwrap();
    }

    /// Enqueues `item` and leases it; returns its id.
    async fn processing(&self, item: &str) -> String {
        self.enqueue(item, Priority::Normal).await;
        let jobs = self.broker.fetch(TOPIC, 1, LEASE).await.unwrap().jobs;
        jobs[0].id().to_owned()
    }

    /// Enqueues `item` and dead-letters it with `error`.
    async fn dead(&self, item: &str, error: &str) {
        self.enqueue(item, Priority::Normal).await;
        let jobs = self.broker.fetch(TOPIC, 1, LEASE).await.unwrap().jobs;
        let failure = Failure {
            error,
            permanent: true,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        self.broker.fail(TOPIC, &jobs[0], &failure).await.unwrap();
        // Dead letters are ordered by the ms they died in.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    /// Enqueues `item` and moves it to the parse-error store.
    async fn parse_error(&self, item: &str, error: &str) {
        self.enqueue(item, Priority::Normal).await;
        let jobs = self.broker.fetch(TOPIC, 1, LEASE).await.unwrap().jobs;
        assert!(self.broker.reject(TOPIC, &jobs[0], error).await.unwrap());
        tokio::time::sleep(Duration::from_millis(3)).await;
    }

    async fn depth(&self, state: State) -> u64 {
        self.broker.depth(TOPIC, state).await.unwrap()
    }

    /// The locators of `state`'s entries, in listing order.
    async fn locators(&self, state: State) -> Vec<String> {
        self.broker
            .entries(TOPIC, state, 0, 500)
            .await
            .unwrap()
            .iter()
            .map(|e| e.locator().to_string())
            .collect()
    }

    /// A worker heartbeat that reports running job `id` of the topic.
    async fn beat(&self, id: &str) {
        let now = now_ms();
        let info = WorkerInfo {
            id: WORKER.to_owned(),
            host: "tp-host".to_owned(),
            pid: 77,
            version: "1.2.3".to_owned(),
            topics: vec![TOPIC.to_owned()],
            concurrency: 4,
            busy: 1,
            jobs: vec![RunningJob {
                topic: TOPIC.to_owned(),
                id: id.to_owned(),
                started_at_ms: now - 2000,
            }],
            state: WorkerState::Running,
            started_at_ms: now - 60_000,
            last_beat_ms: now,
            beat_interval_ms: 60_000,
        };
        self.broker.beat(&info).await.unwrap();
    }
}

/// A form POST with `headers`.
async fn post_with(app: &Router, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let form = (
        header::CONTENT_TYPE.as_str(),
        "application/x-www-form-urlencoded",
    );
    post(app, path, &[&[form], headers].concat(), body).await
}

/// An htmx action: the CSRF token from a page of `app`, the form `body`.
async fn act(app: &Router, path: &str, body: &str) -> Reply {
    // (The token is on every page, error pages too.)
    let token = csrf_token(&get(app, "/topics").await.body);
    post_with(
        app,
        path,
        &[("x-csrf-token", &token), ("hx-request", "true")],
        body,
    )
    .await
}

/// `entry=a&entry=b`.
fn entries_form(locators: &[&str]) -> String {
    locators
        .iter()
        .map(|l| format!("entry={l}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `text` percent-encoded for a form field.
fn form_value(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The entry rows of a page, in order: the cells' text of each.
fn entry_rows(html: &str) -> Vec<Vec<String>> {
    html.split("<tr data-entry=\"")
        .skip(1)
        .map(|row| cells(&row[..row.find("</tr>").unwrap()]))
        .collect()
}

/// The items of the page's rows, in order, read from the payload cells.
fn items(html: &str) -> Vec<String> {
    entry_rows(html)
        .iter()
        .map(|cells| {
            let payload = cells
                .iter()
                .find(|c| c.starts_with("{&quot;item&quot;"))
                .unwrap_or_else(|| panic!("no payload in {cells:?}"));
            payload
                .trim_start_matches("{&quot;item&quot;:&quot;")
                .trim_end_matches("&quot;}")
                .to_owned()
        })
        .collect()
}

/// The count on the tab of `state`.
fn tab_count(html: &str, state: &str) -> u64 {
    let marker = format!("id=\"tab-{state}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no tab {state} in {html}"));
    let rest = &html[at..];
    let rest = &rest[rest.find("class=\"count").unwrap()..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..start + rest[start..].find('<').unwrap()]
        .parse()
        .unwrap()
}

fn topic_path(state: &str) -> String {
    format!("/topics/{TOPIC}?state={state}")
}

#[tokio::test]
async fn every_tab_lists_its_jobs_in_order() {
    let env = Env::new().await;
    let running = env.processing("p1").await;
    env.dead("x1", "boom x1").await;
    env.dead("x2", "boom x2").await;
    env.parse_error("y1", "bad payload y1").await;
    for (item, priority) in [
        ("h1", Priority::High),
        ("n1", Priority::Normal),
        ("h2", Priority::High),
        ("n2", Priority::Normal),
        ("l1", Priority::Low),
        ("n3", Priority::Normal),
    ] {
        env.enqueue(item, priority).await;
    }
    env.delayed("d2", Duration::from_secs(7200)).await;
    env.delayed("d1", Duration::from_secs(3600)).await;
    env.beat(&running).await;
    let app = env.app(Options::new());

    // Without a state the page opens on the first state with entries.
    let page = get(&app, &format!("/topics/{TOPIC}")).await.ok();
    assert_eq!(
        attr(
            &page,
            "aria-current=\"page\" href=\"/topics/tp",
            "data-state"
        ),
        "high"
    );
    for (state, count) in [
        ("high", 2),
        ("normal", 3),
        ("low", 1),
        ("delayed", 2),
        ("processing", 1),
        ("dead", 2),
        ("parse_error", 1),
    ] {
        assert_eq!(tab_count(&page, state), count, "{state}");
    }
    assert_eq!(
        attr(&page, "id=\"tab-dead\"", "href"),
        "/topics/tp-orders?state=dead&amp;page=1"
    );

    for (state, expected) in [
        ("high", &["h1", "h2"][..]),
        ("normal", &["n1", "n2", "n3"]),
        ("low", &["l1"]),
        ("delayed", &["d1", "d2"]),
        ("processing", &["p1"]),
        ("dead", &["x2", "x1"]),
        ("parse_error", &["y1"]),
    ] {
        let page = get(&app, &topic_path(state)).await.ok();
        assert_eq!(items(&page), expected, "{state}");
        assert_eq!(
            attr(
                &page,
                "aria-current=\"page\" href=\"/topics/tp",
                "data-state"
            ),
            state
        );
    }

    // Columns per state: checkbox, id, time, (worker), attempt, priority,
    // payload, (error), actions.
    let normal = get(&app, &topic_path("normal")).await.ok();
    let row = &entry_rows(&normal)[0];
    assert_eq!(row[0], "", "the checkbox: {row:?}");
    assert!(row[2].ends_with("ago"), "enqueued: {row:?}");
    assert_eq!((row[3].as_str(), row[4].as_str()), ("1 of 3", "normal"));
    assert_eq!(row[6], "Delete");
    assert!(normal.contains("name=\"entry\""), "{normal}");
    assert!(normal.contains("form=\"pick\""), "{normal}");

    let delayed = get(&app, &topic_path("delayed")).await.ok();
    assert!(
        entry_rows(&delayed)[0][2].starts_with("in 59m"),
        "{delayed}"
    );
    assert!(delayed.contains("id=\"run-now-selected\""), "{delayed}");

    let processing = get(&app, &topic_path("processing")).await.ok();
    let row = &entry_rows(&processing)[0];
    assert_eq!(row[0], running, "no checkbox while it runs: {row:?}");
    assert!(row[1].starts_with("in "), "lease deadline: {row:?}");
    assert!(
        row[2].starts_with(WORKER),
        "the worker that holds it: {row:?}"
    );
    assert!(!processing.contains("id=\"purge-state\""), "{processing}");
    assert!(!processing.contains("type=\"checkbox\""), "{processing}");

    let dead = get(&app, &topic_path("dead")).await.ok();
    let row = &entry_rows(&dead)[0];
    assert!(row[2].ends_with("ago"), "died: {row:?}");
    assert_eq!(row[6], "boom x2");
    assert_eq!(row[7], "Retry Delete");
    assert!(
        dead.contains("<button type=\"submit\" class=\"retry-one\">Retry</button>"),
        "{dead}"
    );
    assert!(
        dead.contains("class=\"delete-one danger\">Delete</button>"),
        "{dead}"
    );
    assert!(dead.contains("id=\"retry-selected\""), "{dead}");
    assert!(dead.contains("id=\"retry-all\""), "{dead}");
    assert!(dead.contains("id=\"purge-state\""), "{dead}");
    let errors = get(&app, &topic_path("parse_error")).await.ok();
    assert_eq!(entry_rows(&errors)[0][6], "bad payload y1");

    // Only the rows refresh, by themselves.
    assert_eq!(
        attr(&dead, "id=\"entry-rows\"", "hx-get"),
        "/topics/tp-orders?state=dead&amp;page=1&amp;part=live"
    );
    assert_eq!(
        attr(&dead, "id=\"entry-rows\"", "hx-trigger"),
        "every 2s, rmq-changed from:body"
    );
    let live = get(&app, "/topics/tp-orders?state=dead&page=1&part=live")
        .await
        .ok();
    assert!(live.trim_start().starts_with("<tr"), "{live}");
    assert!(!live.contains("<thead"), "{live}");
    assert_eq!(items(&live), ["x2", "x1"]);
    let head = get(&app, "/topics/tp-orders?state=dead&page=1&part=head")
        .await
        .ok();
    assert_eq!(tab_count(&head, "dead"), 2);
    assert!(!head.contains("<html"), "{head}");

    // The topics table links here.
    let topics = get(&app, "/topics").await.ok();
    assert!(
        topics.contains("<a href=\"/topics/tp-orders\">tp-orders</a>"),
        "{topics}"
    );

    // Bad queries say what is wrong.
    let bad = get(&app, "/topics/tp-orders?state=gone")
        .await
        .status(StatusCode::BAD_REQUEST);
    assert!(bad.contains("unknown state `gone`"), "{bad}");
    for page in ["0", "x", "99999999999999999"] {
        let bad = get(&app, &format!("/topics/tp-orders?page={page}"))
            .await
            .status(StatusCode::BAD_REQUEST);
        assert!(bad.contains("whole number"), "{page}: {bad}");
    }

    // Nothing a strict CSP would block: no inline script or style.
    let detail = env.locators(State::Dead).await.remove(0);
    for path in [
        topic_path("dead"),
        topic_path("processing"),
        format!("/topics/tp-orders/entries/{detail}"),
    ] {
        let reply = get(&app, &path).await;
        assert_eq!(
            reply.headers["content-security-policy"],
            rmq_web::CONTENT_SECURITY_POLICY
        );
        let body = reply.ok();
        assert_csp_clean(&body, &path);
    }
}

#[tokio::test]
async fn a_client_without_redis_shows_the_error() {
    let app = rmq_web::router(Client::fake(), Options::new());
    for path in [
        "/topics/tp-orders",
        "/topics/tp-orders?state=dead&part=live",
        "/topics/tp-orders?state=dead&part=head",
        "/topics/tp-orders/entries/dead.1.00ff00ff00ff00ff",
    ] {
        let body = get(&app, path)
            .await
            .status(StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("no Redis connection"), "{path}: {body}");
        assert!(body.contains("role=\"alert\""), "{path}: {body}");
    }
    let refused = act(&app, "/topics/tp-orders/states/dead/purge", "")
        .await
        .status(StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.contains("no Redis connection"), "{refused}");
}

#[tokio::test]
async fn pages_hold_fifty_entries() {
    let env = Env::new().await;
    let orders: Vec<PlaceOrder> = (0..120).map(|i| order(&format!("j{i:03}"))).collect();
    env.client.enqueue_many(orders).await.unwrap();
    let app = env.app(Options::new());

    let first = get(&app, &topic_path("normal")).await.ok();
    let listed = items(&first);
    assert_eq!(listed.len(), 50);
    assert_eq!((listed[0].as_str(), listed[49].as_str()), ("j000", "j049"));
    assert!(
        first.contains("entries 1–50 of 120 · page 1 of 3"),
        "{first}"
    );
    assert!(!first.contains("rel=\"prev\""), "{first}");
    assert_eq!(
        attr(&first, "rel=\"next\"", "href"),
        "/topics/tp-orders?state=normal&amp;page=2"
    );

    let second = get(&app, "/topics/tp-orders?state=normal&page=2")
        .await
        .ok();
    let listed = items(&second);
    assert_eq!(listed.len(), 50);
    assert_eq!(listed[0], "j050", "page 2 starts at the 51st");
    assert!(second.contains("entries 51–100 of 120"), "{second}");
    assert_eq!(
        attr(&second, "rel=\"prev\"", "href"),
        "/topics/tp-orders?state=normal&amp;page=1"
    );
    let live = get(&app, "/topics/tp-orders?state=normal&page=2&part=live")
        .await
        .ok();
    assert_eq!(items(&live)[0], "j050");

    let third = get(&app, "/topics/tp-orders?state=normal&page=3")
        .await
        .ok();
    let listed = items(&third);
    assert_eq!(listed.len(), 20);
    assert_eq!((listed[0].as_str(), listed[19].as_str()), ("j100", "j119"));
    assert!(!third.contains("rel=\"next\""), "{third}");

    let beyond = get(&app, "/topics/tp-orders?state=normal&page=4")
        .await
        .ok();
    assert!(beyond.contains("No entries on this page."), "{beyond}");
}

#[tokio::test]
async fn job_detail_shows_the_envelope_and_the_payload_escaped() {
    let env = Env::new().await;
    order(XSS)
        .job_id("order-7")
        .enqueue(&env.client)
        .await
        .unwrap();
    let app = env.app(Options::new());
    let locator = env.locators(NORMAL).await.remove(0);

    let list = get(&app, &topic_path("normal")).await.ok();
    let href = format!("/topics/tp-orders/entries/{locator}");
    assert!(list.contains(&format!("href=\"{href}\"")), "{list}");
    assert!(!list.contains(XSS), "{list}");

    let page = get(&app, &href).await.ok();
    assert!(!page.contains(XSS), "{page}");
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains(
            "<pre class=\"json\" id=\"payload\"><code>{\n  &quot;item&quot;: \
             &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;\n}</code></pre>"
        ),
        "{page}"
    );
    assert!(page.contains("<title>Job order-7"), "{page}");
    for fact in [
        "<dt>Job id</dt><dd class=\"mono\" id=\"job-id\">order-7</dd>",
        "<dt>Explicit id</dt><dd>yes</dd>",
        "<dt>Priority</dt><dd>normal</dd>",
        "<dt>Attempt</dt><dd>1 of 3</dd>",
        // The default TTL: a day.
        "<dt>Expires at</dt><dd><span title=",
        "<dt>Delayed</dt><dd>no</dd>",
    ] {
        assert!(page.contains(fact), "{fact}: {page}");
    }
    assert_eq!(attr(&page, "id=\"entry-state\"", "data-state"), "normal");
    assert!(page.contains("id=\"delete-entry\""), "{page}");
    assert!(!page.contains("id=\"retry-entry\""), "{page}");
    assert_eq!(
        attr(&page, "id=\"entry-detail\"", "hx-get"),
        format!("{href}?part=live")
    );

    // Deleted: the detail is gone, and says where to look.
    let deleted = act(&app, "/topics/tp-orders/delete", &entries_form(&[&locator]))
        .await
        .ok();
    assert!(deleted.contains("deleted 1"), "{deleted}");
    let gone = get(&app, &href).await.status(StatusCode::NOT_FOUND);
    assert!(
        gone.contains("no longer among the pending normal entries"),
        "{gone}"
    );
    assert_eq!(
        attr(&gone, "id=\"back-to-topic\"", "href"),
        "/topics/tp-orders?state=normal&amp;page=1"
    );
    let live = get(&app, &format!("{href}?part=live"))
        .await
        .status(StatusCode::NOT_FOUND);
    assert!(!live.contains("<html"), "{live}");
    let bad = get(&app, "/topics/tp-orders/entries/nonsense")
        .await
        .status(StatusCode::BAD_REQUEST);
    assert!(bad.contains("not an entry locator"), "{bad}");

    // A dead letter: its error; a payload that does not decode: why, and
    // its bytes.
    env.dead("x1", &format!("failed: {XSS}")).await;
    let spec = EnqueueSpec {
        priority: Priority::Low,
        delay: Duration::ZERO,
        ttl: None,
        max_retries: 0,
        index: false,
    };
    let garbage = [0xc1, b'<', b'b', b'>'];
    let job = NewJob {
        payload: &garbage,
        id: None,
    };
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let context = rmq::trace::TraceContext::from_w3c(traceparent, "k=v").unwrap();
    env.broker
        .enqueue_traced(TOPIC, &spec, &[job], &context)
        .await
        .unwrap();

    let dead = env.locators(State::Dead).await.remove(0);
    let page = get(&app, &format!("/topics/tp-orders/entries/{dead}"))
        .await
        .ok();
    assert!(
        page.contains("<pre class=\"error-text\" id=\"last-error\">failed: &lt;script&gt;"),
        "{page}"
    );
    assert!(page.contains("id=\"retry-entry\""), "{page}");
    assert!(page.contains("<dt>Died</dt>"), "{page}");

    let low = env.locators(LOW).await.remove(0);
    let page = get(&app, &format!("/topics/tp-orders/entries/{low}"))
        .await
        .ok();
    assert!(page.contains("The payload does not decode"), "{page}");
    assert!(page.contains("00000000  c1 3c 62 3e"), "{page}");
    assert!(page.contains("&lt;b&gt;"), "{page}");
    assert!(
        page.contains(&format!(
            "<dt>Trace context</dt><dd class=\"mono\">{traceparent}<br>tracestate: k=v</dd>"
        )),
        "{page}"
    );
    let list = get(&app, &topic_path("low")).await.ok();
    assert!(
        entry_rows(&list)[0][5].starts_with("does not decode"),
        "{list}"
    );
}

#[tokio::test]
async fn dead_and_parse_error_actions_change_redis_as_they_say() {
    let env = Env::new().await;
    for item in ["x1", "x2", "x3", "x4"] {
        env.dead(item, "boom").await;
    }
    env.parse_error("y1", "bad").await;
    env.parse_error("y2", "bad").await;
    let app = env.app(Options::new());
    let dead = env.locators(State::Dead).await; // x4, x3, x2, x1

    let one = act(&app, "/topics/tp-orders/retry", &entries_form(&[&dead[0]])).await;
    assert_eq!(one.headers["hx-trigger"], "rmq-changed");
    let message = one.ok();
    assert!(message.contains("retried 1</p>"), "{message}");
    assert!(message.contains("role=\"status\""), "{message}");
    assert_eq!(
        (env.depth(State::Dead).await, env.depth(NORMAL).await),
        (3, 1)
    );

    let selected = act(
        &app,
        "/topics/tp-orders/retry",
        &entries_form(&[&dead[1], &dead[0]]),
    )
    .await
    .ok();
    assert!(
        selected.contains("retried 1, 1 skipped (gone)"),
        "{selected}"
    );
    assert_eq!(
        (env.depth(State::Dead).await, env.depth(NORMAL).await),
        (2, 2)
    );

    let deleted = act(&app, "/topics/tp-orders/delete", &entries_form(&[&dead[2]]))
        .await
        .ok();
    assert!(deleted.contains("deleted 1</p>"), "{deleted}");
    let deleted = act(
        &app,
        "/topics/tp-orders/delete",
        &entries_form(&[&dead[3], &dead[2]]),
    )
    .await
    .ok();
    assert!(deleted.contains("deleted 1, 1 skipped (gone)"), "{deleted}");
    assert_eq!(env.depth(State::Dead).await, 0);
    assert_eq!(env.depth(NORMAL).await, 2, "deleting retried nothing");

    // Whole states.
    let all = act(&app, "/topics/tp-orders/states/parse_error/retry", "")
        .await
        .ok();
    assert!(all.contains("retried 2</p>"), "{all}");
    assert_eq!(env.depth(State::ParseError).await, 0);
    assert_eq!(env.depth(NORMAL).await, 4);
    env.dead("x5", "boom").await;
    env.dead("x6", "boom").await;
    let all = act(&app, "/topics/tp-orders/states/dead/retry", "")
        .await
        .ok();
    assert!(all.contains("retried 2</p>"), "{all}");
    assert_eq!(env.depth(State::Dead).await, 0);
    env.dead("x7", "boom").await;
    env.dead("x8", "boom").await;
    env.parse_error("y3", "bad").await;
    let purged = act(&app, "/topics/tp-orders/states/dead/purge", "")
        .await
        .ok();
    assert!(purged.contains("purged 2 dead entries"), "{purged}");
    let purged = act(&app, "/topics/tp-orders/states/parse_error/purge", "")
        .await
        .ok();
    assert!(purged.contains("purged 1 parse-error entries"), "{purged}");
    assert_eq!(env.depth(State::Dead).await, 0);
    assert_eq!(env.depth(State::ParseError).await, 0);

    // Retrying what is not dead is refused, with the reason.
    let pending = env.locators(NORMAL).await;
    let refused = act(
        &app,
        "/topics/tp-orders/retry",
        &entries_form(&[&pending[0]]),
    )
    .await;
    assert!(!refused.headers.contains_key("hx-trigger"));
    let refused = refused.status(StatusCode::CONFLICT);
    assert!(refused.contains("cannot retry a normal entry"), "{refused}");
    assert!(refused.contains("role=\"alert\""), "{refused}");
    let refused = act(&app, "/topics/tp-orders/states/delayed/retry", "")
        .await
        .status(StatusCode::CONFLICT);
    assert!(
        refused.contains("cannot retry delayed entries"),
        "{refused}"
    );
    let refused = act(&app, "/topics/tp-orders/retry", "")
        .await
        .status(StatusCode::BAD_REQUEST);
    assert!(refused.contains("nothing selected"), "{refused}");
    let refused = act(&app, "/topics/tp-orders/retry", "entry=%3Cb%3E")
        .await
        .status(StatusCode::BAD_REQUEST);
    assert!(
        refused.contains("`&lt;b&gt;` is not an entry locator"),
        "{refused}"
    );
    let refused = act(&app, "/topics/tp-orders/states/bogus/purge", "")
        .await
        .status(StatusCode::BAD_REQUEST);
    assert!(refused.contains("unknown state `bogus`"), "{refused}");
    // Two parse errors and four dead letters were retried.
    assert_eq!(env.depth(NORMAL).await, 6);
}

#[tokio::test]
async fn delayed_pending_and_processing_actions() {
    let env = Env::new().await;
    let running = env.processing("p1").await;
    for (item, hours) in [("d1", 1), ("d2", 2), ("d3", 3)] {
        env.delayed(item, Duration::from_secs(hours * 3600)).await;
    }
    for item in ["n1", "n2", "n3", "n4"] {
        env.enqueue(item, Priority::Normal).await;
    }
    let app = env.app(Options::new());

    let delayed = env.locators(State::Delayed).await;
    let ran = act(
        &app,
        "/topics/tp-orders/run-now",
        &entries_form(&[&delayed[0]]),
    )
    .await
    .ok();
    assert!(ran.contains("queued 1 to run now</p>"), "{ran}");
    assert_eq!(env.depth(State::Delayed).await, 2);
    assert_eq!(env.depth(NORMAL).await, 5);
    let list = get(&app, &topic_path("normal")).await.ok();
    assert_eq!(items(&list), ["n1", "n2", "n3", "n4", "d1"]);
    let deleted = act(
        &app,
        "/topics/tp-orders/delete",
        &entries_form(&[&delayed[1], &delayed[2]]),
    )
    .await
    .ok();
    assert!(deleted.contains("deleted 2</p>"), "{deleted}");
    assert_eq!(env.depth(State::Delayed).await, 0);
    let refused = act(
        &app,
        "/topics/tp-orders/run-now",
        &entries_form(&[&env.locators(NORMAL).await[0]]),
    )
    .await
    .status(StatusCode::CONFLICT);
    assert!(
        refused.contains("cannot run now a normal entry"),
        "{refused}"
    );

    // Pending: one, ticked, all.
    let pending = env.locators(NORMAL).await;
    act(
        &app,
        "/topics/tp-orders/delete",
        &entries_form(&[&pending[0]]),
    )
    .await
    .ok();
    let deleted = act(
        &app,
        "/topics/tp-orders/delete",
        &entries_form(&[&pending[1], &pending[2]]),
    )
    .await
    .ok();
    assert!(deleted.contains("deleted 2</p>"), "{deleted}");
    let list = get(&app, &topic_path("normal")).await.ok();
    assert_eq!(items(&list), ["n4", "d1"]);
    let purged = act(&app, "/topics/tp-orders/states/normal/purge", "")
        .await
        .ok();
    assert!(
        purged.contains("purged 2 pending normal entries"),
        "{purged}"
    );
    assert_eq!(env.depth(NORMAL).await, 0);

    // A running job cannot be deleted or purged.
    let leased = env.locators(State::Processing).await;
    let refused = act(
        &app,
        "/topics/tp-orders/delete",
        &entries_form(&[&leased[0]]),
    )
    .await
    .status(StatusCode::CONFLICT);
    assert!(
        refused.contains("cannot delete a processing entry"),
        "{refused}"
    );
    let refused = act(&app, "/topics/tp-orders/states/processing/purge", "")
        .await
        .status(StatusCode::CONFLICT);
    assert!(
        refused.contains("cannot purge a processing entry"),
        "{refused}"
    );
    assert_eq!(env.depth(State::Processing).await, 1);
    let page = get(&app, &format!("/topics/tp-orders/entries/{}", leased[0]))
        .await
        .ok();
    assert!(page.contains(&running), "{page}");
    assert!(page.contains("<dt>Lease deadline</dt>"), "{page}");
    assert!(!page.contains("id=\"delete-entry\""), "{page}");

    // A plain form (no htmx): the token in a field, the topic page with
    // the message in reply.
    env.enqueue("n5", Priority::Normal).await;
    let token = csrf_token(&get(&app, "/topics").await.ok());
    let body = format!(
        "csrf={token}&{}",
        entries_form(&[&env.locators(NORMAL).await[0]])
    );
    let page = post_with(&app, "/topics/tp-orders/delete", &[], &body)
        .await
        .ok();
    assert!(page.contains("<html"), "{page}");
    assert!(page.contains("deleted 1</p>"), "{page}");
    assert_eq!(tab_count(&page, "normal"), 0);
}

#[tokio::test]
async fn pause_and_resume_flip_the_topic() {
    let env = Env::new().await;
    env.enqueue("n1", Priority::Normal).await;
    let app = env.app(Options::new());
    let page = get(&app, &format!("/topics/{TOPIC}")).await.ok();
    assert!(page.contains("id=\"pause-topic\""), "{page}");
    assert!(page.contains("id=\"running-badge\""), "{page}");
    assert_eq!(
        attr(&page, "id=\"topic-head\"", "hx-trigger"),
        "rmq-changed from:body"
    );

    let paused = act(&app, "/topics/tp-orders/pause", "").await;
    assert_eq!(paused.headers["hx-trigger"], "rmq-changed");
    assert!(paused.ok().contains("paused topic tp-orders"));
    assert!(env.broker.stats(TOPIC).await.unwrap().paused);
    let again = act(&app, "/topics/tp-orders/pause", "").await.ok();
    assert!(
        again.contains("topic tp-orders was already paused"),
        "{again}"
    );
    let page = get(&app, &format!("/topics/{TOPIC}")).await.ok();
    assert!(page.contains("id=\"paused-badge\""), "{page}");
    assert!(page.contains("id=\"resume-topic\""), "{page}");
    assert!(!page.contains("id=\"pause-topic\""), "{page}");
    let topics = get(&app, "/topics").await.ok();
    let row = &topics[topics.find("data-topic=\"tp-orders\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(
        row.contains("<span class=\"badge paused\">paused</span>"),
        "{row}"
    );

    let resumed = act(&app, "/topics/tp-orders/resume", "").await.ok();
    assert!(resumed.contains("resumed topic tp-orders"), "{resumed}");
    assert!(!env.broker.stats(TOPIC).await.unwrap().paused);
    let again = act(&app, "/topics/tp-orders/resume", "").await.ok();
    assert!(again.contains("was not paused"), "{again}");
}

#[tokio::test]
async fn the_enqueue_form_checks_the_json_against_the_payload_type() {
    let env = Env::new().await;
    let app = env.app(Options::new());
    let page = get(&app, &format!("/topics/{TOPIC}")).await.ok();
    assert_eq!(
        attr(&page, "id=\"enqueue-form\"", "hx-post"),
        "/topics/tp-orders/enqueue"
    );
    assert_eq!(
        attr(&page, "id=\"enqueue-form\"", "hx-target"),
        "#enqueue-result"
    );
    assert!(page.contains("<div id=\"enqueue-result\""), "{page}");
    assert!(page.contains("name=\"json\""), "{page}");
    assert!(page.contains("&quot;item&quot;: String"), "{page}");

    let bad = act(
        &app,
        "/topics/tp-orders/enqueue",
        &format!("json={}", form_value(r#"{"item": 5}"#)),
    )
    .await
    .status(StatusCode::BAD_REQUEST);
    assert!(bad.contains("does not fit its type"), "{bad}");
    assert!(bad.contains("expected a JSON object like"), "{bad}");
    let broken = act(&app, "/topics/tp-orders/enqueue", "json=%7B")
        .await
        .status(StatusCode::BAD_REQUEST);
    assert!(broken.contains("does not fit its type"), "{broken}");
    assert_eq!(env.depth(NORMAL).await, 0, "nothing was enqueued");

    let json = format!(r#"{{"item": "{XSS}"}}"#);
    let good = act(
        &app,
        "/topics/tp-orders/enqueue",
        &format!("json={}", form_value(&json)),
    )
    .await;
    assert_eq!(good.headers["hx-trigger"], "rmq-changed");
    let good = good.ok();
    let entries = env.broker.entries(TOPIC, NORMAL, 0, 10).await.unwrap();
    assert_eq!(entries.len(), 1);
    let id = entries[0].id().unwrap();
    assert!(good.contains(&format!("enqueued job {id}")), "{good}");
    let list = get(&app, &topic_path("normal")).await.ok();
    assert_eq!(items(&list), ["&lt;script&gt;alert(1)&lt;/script&gt;"]);

    // No task linked for the topic: no form, and the route says why.
    env.broker.record_topics(&[BARE]).await.unwrap();
    let bare = get(&app, &format!("/topics/{BARE}")).await.ok();
    assert!(!bare.contains("enqueue-form"), "{bare}");
    assert!(!bare.contains("no record of topic"), "{bare}");
    let refused = act(&app, "/topics/tp-bare/enqueue", "json=%7B%7D")
        .await
        .status(StatusCode::NOT_FOUND);
    assert!(refused.contains("no task is registered"), "{refused}");
    let unknown = get(&app, "/topics/never-seen").await.ok();
    assert!(unknown.contains("no record of topic"), "{unknown}");
}

#[tokio::test]
async fn actions_need_the_csrf_token() {
    let env = Env::new().await;
    env.dead("x1", "boom").await;
    let app = env.app(Options::new());
    let dead = env.locators(State::Dead).await;
    for (path, body) in [
        ("/topics/tp-orders/retry", entries_form(&[&dead[0]])),
        ("/topics/tp-orders/delete", entries_form(&[&dead[0]])),
        ("/topics/tp-orders/states/dead/purge", String::new()),
        ("/topics/tp-orders/pause", String::new()),
    ] {
        let refused = post_with(&app, path, &[("hx-request", "true")], &body)
            .await
            .status(StatusCode::FORBIDDEN);
        assert!(refused.contains("no CSRF token"), "{path}: {refused}");
        let wrong = post_with(&app, path, &[], &format!("csrf=00&{body}"))
            .await
            .status(StatusCode::FORBIDDEN);
        assert!(wrong.contains("CSRF token is wrong"), "{path}: {wrong}");
    }
    assert_eq!(env.depth(State::Dead).await, 1);
    assert!(!env.broker.stats(TOPIC).await.unwrap().paused);
}

#[tokio::test]
async fn read_only_shows_no_forms_and_refuses_every_action() {
    let env = Env::new().await;
    env.dead("x1", "boom").await;
    env.delayed("d1", Duration::from_secs(60)).await;
    env.enqueue("n1", Priority::Normal).await;
    let app = env.app(Options::new().read_only(true));
    let dead = env.locators(State::Dead).await;
    let delayed = env.locators(State::Delayed).await;

    for path in [
        topic_path("dead"),
        topic_path("delayed"),
        topic_path("normal"),
        format!("/topics/tp-orders/entries/{}", dead[0]),
        format!("/topics/tp-orders/entries/{}", delayed[0]),
    ] {
        let page = get(&app, &path).await.ok();
        assert!(!page.contains("<form"), "{path}: {page}");
        assert!(!page.contains("<button"), "{path}: {page}");
        assert!(!page.contains("checkbox"), "{path}: {page}");
        assert!(!page.contains("<textarea"), "{path}: {page}");
        assert!(!page.contains("hx-post"), "{path}: {page}");
    }
    let page = get(&app, &topic_path("dead")).await.ok();
    assert_eq!(items(&page), ["x1"]);
    assert_eq!(
        entry_rows(&page)[0].len(),
        6,
        "no checkbox or actions column"
    );

    let token = csrf_token(&page);
    let one = entries_form(&[&dead[0]]);
    for (path, body) in [
        ("/topics/tp-orders/retry", one.as_str()),
        ("/topics/tp-orders/delete", one.as_str()),
        ("/topics/tp-orders/run-now", &entries_form(&[&delayed[0]])),
        ("/topics/tp-orders/states/dead/purge", ""),
        ("/topics/tp-orders/states/dead/retry", ""),
        ("/topics/tp-orders/states/normal/purge", ""),
        ("/topics/tp-orders/pause", ""),
        ("/topics/tp-orders/resume", ""),
        (
            "/topics/tp-orders/enqueue",
            "json=%7B%22item%22%3A%22a%22%7D",
        ),
    ] {
        let refused = post_with(
            &app,
            path,
            &[("x-csrf-token", &token), ("hx-request", "true")],
            body,
        )
        .await
        .status(StatusCode::FORBIDDEN);
        assert!(refused.contains("read-only"), "{path}: {refused}");
    }
    assert_eq!(env.depth(State::Dead).await, 1);
    assert_eq!(env.depth(State::Delayed).await, 1);
    assert_eq!(env.depth(NORMAL).await, 1);
    assert!(!env.broker.stats(TOPIC).await.unwrap().paused);
}

#[tokio::test]
async fn the_topic_page_works_under_a_prefix_and_with_odd_names() {
    let env = Env::new().await;
    let odd = "a/b <c>";
    let spec = EnqueueSpec {
        priority: Priority::High,
        delay: Duration::ZERO,
        ttl: None,
        max_retries: 0,
        index: false,
    };
    let payload = rmq::codec::encode(&"x").unwrap();
    env.broker.record_topics(&[odd]).await.unwrap();
    env.broker
        .enqueue(
            odd,
            &spec,
            &[NewJob {
                payload: &payload,
                id: None,
            }],
        )
        .await
        .unwrap();
    let app = Router::new().nest("/admin", env.app(Options::new()));
    let topics = get(&app, "/admin/topics").await.ok();
    let href = "/admin/topics/a%2Fb%20%3Cc%3E";
    assert!(topics.contains(&format!("href=\"{href}\"")), "{topics}");
    let page = get(&app, href).await.ok();
    assert!(page.contains("<title>a/b &lt;c&gt; ·"), "{page}");
    assert_eq!(tab_count(&page, "high"), 1);
    assert_eq!(
        attr(&page, "id=\"entry-rows\"", "hx-get"),
        format!("{href}?state=high&amp;page=1&amp;part=live")
    );
    let locator = env.broker.entries(odd, HIGH, 0, 1).await.unwrap()[0]
        .locator()
        .to_string();
    let detail = format!("{href}/entries/{locator}");
    assert!(page.contains(&format!("href=\"{detail}\"")), "{page}");
    let shown = get(&app, &detail).await.ok();
    assert!(shown.contains("&quot;x&quot;"), "{shown}");
    let token = csrf_token(&page);
    let deleted = post_with(
        &app,
        &format!("{href}/delete"),
        &[("x-csrf-token", &token), ("hx-request", "true")],
        &entries_form(&[&locator]),
    )
    .await
    .ok();
    assert!(deleted.contains("deleted 1"), "{deleted}");
    assert_eq!(env.broker.depth(odd, HIGH).await.unwrap(), 0);
}
