//! `/search` against a real Redis: text in payloads and errors, any case;
//! exact ids across topics; the topic filter; results that stream in over
//! bounded batches; escaping; bad cursors.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use rmq::broker::{EnqueueSpec, Failure, NewJob, State};
use rmq::{Client, Priority, TaskError};
use rmq_web::Options;

use common::{cells, get, Env, LEASE, XSS};

#[rmq::task(topic = "search-orders", retries = 0)]
async fn place_order(item: String) -> Result<(), TaskError> {
    let _ = item;
    Ok(())
}

#[rmq::task(topic = "search-mail", retries = 0)]
async fn send_mail(to: String) -> Result<(), TaskError> {
    let _ = to;
    Ok(())
}

/// The entries one search request reads at most.
const BUDGET: usize = 2000;

impl Env {
    async fn order(&self, item: &str) {
        PlaceOrder { item: item.into() }
            .enqueue(&self.client)
            .await
            .unwrap();
    }

    /// Enqueues more orders than one search request reads: `needle-first`,
    /// hay, `needle-last`; returns how many.
    async fn haystack(&self) -> usize {
        let total = BUDGET + 500;
        let items = (0..total).map(|i| PlaceOrder {
            item: match i {
                0 => "needle-first".to_owned(),
                i if i == total - 1 => "needle-last".to_owned(),
                i => format!("hay-{i}"),
            },
        });
        self.client.enqueue_many(items).await.unwrap();
        total
    }

    /// Dead-letters the next pending order with `error`.
    async fn kill_next_order(&self, error: &str) {
        let jobs = self
            .broker
            .fetch("search-orders", 1, LEASE)
            .await
            .unwrap()
            .jobs;
        let failure = Failure {
            error,
            permanent: true,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        self.broker
            .fail("search-orders", &jobs[0], &failure)
            .await
            .unwrap();
    }
}

/// The value of attribute `attr` of the first tag that contains `marker`,
/// with `&amp;` unescaped.
fn attr(html: &str, marker: &str, attr: &str) -> String {
    common::attr(html, marker, attr).replace("&amp;", "&")
}

/// The text of the cells of every hit row, in order (quotes unescaped).
fn hits(html: &str) -> Vec<Vec<String>> {
    html.split("<tr class=\"hit\"")
        .skip(1)
        .map(|row| {
            cells(&row[..row.find("</tr>").unwrap()])
                .iter()
                .map(|cell| cell.replace("&quot;", "\""))
                .collect()
        })
        .collect()
}

/// Follows the continuation rows from `first` to the end: every batch's
/// body, the first one included.
async fn all_batches(app: &Router, first: String) -> Vec<String> {
    let mut batches = vec![first];
    while batches.last().unwrap().contains("search-more") {
        let more = attr(batches.last().unwrap(), "class=\"search-more\"", "hx-get");
        assert!(more.contains("part=more"), "{more}");
        batches.push(get(app, &more).await.ok());
        assert!(batches.len() < 100, "the search never ends");
    }
    batches
}

#[tokio::test]
async fn finds_text_in_payloads_and_errors_in_any_case() {
    let env = Env::new().await;
    env.order("doomed").await;
    env.kill_next_order("Card DECLINED by the bank").await;
    env.order("Blue-Widget").await;
    env.order("red-gadget").await;
    let app = env.app(Options::new());

    let page = get(&app, "/search?q=blue-WIDGET&topic=&mode=text")
        .await
        .ok();
    let rows = hits(&page);
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0][0], "search-orders");
    assert_eq!(rows[0][1], "normal");
    assert!(rows[0][3].starts_with("enqueued "), "{:?}", rows[0]);
    assert_eq!(rows[0][4], r#"{"item":"Blue-Widget"}"#);
    assert!(page.contains("search finished: 1 hit,"), "{page}");

    // The job in the dead-letter queue, found by its error.
    let page = get(&app, "/search?q=card+declined").await.ok();
    let rows = hits(&page);
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0][1], "dead");
    assert!(rows[0][3].starts_with("died "), "{:?}", rows[0]);
    assert_eq!(rows[0][4], r#"{"item":"doomed"}"#);
    assert_eq!(rows[0][5], "Card DECLINED by the bank");

    // The hit links to the job detail page, by locator.
    let dead = env
        .broker
        .entries("search-orders", State::Dead, 0, 10)
        .await
        .unwrap();
    let detail = format!("/topics/search-orders/entries/{}", dead[0].locator());
    assert!(page.contains(&format!("href=\"{detail}\"")), "{page}");
    assert!(page.contains("href=\"/topics/search-orders\""), "{page}");

    let none = get(&app, "/search?q=nothing-like-this").await.ok();
    assert!(hits(&none).is_empty(), "{none}");
    assert!(none.contains("search finished: 0 hits,"), "{none}");
}

#[tokio::test]
async fn id_mode_finds_the_exact_id_in_every_topic() {
    let env = Env::new().await;
    PlaceOrder { item: "a".into() }
        .job_id("job-42")
        .enqueue(&env.client)
        .await
        .unwrap();
    SendMail { to: "b".into() }
        .job_id("job-42")
        .enqueue(&env.client)
        .await
        .unwrap();
    PlaceOrder { item: "c".into() }
        .job_id("job-421")
        .enqueue(&env.client)
        .await
        .unwrap();
    let app = env.app(Options::new());

    let page = get(&app, "/search?q=job-42&mode=id").await.ok();
    let rows = hits(&page);
    let mut topics: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    topics.sort();
    assert_eq!(topics, ["search-mail", "search-orders"], "{page}");
    assert!(rows.iter().all(|r| r[2] == "job-42"), "{rows:?}");
    // The form remembers the mode.
    assert!(
        page.contains("<option value=\"id\" selected>exact id</option>"),
        "{page}"
    );
    // As text, the longer id matches too.
    let text = get(&app, "/search?q=job-42&mode=text").await.ok();
    assert_eq!(hits(&text).len(), 3, "{text}");
}

#[tokio::test]
async fn the_topic_filter_limits_the_results() {
    let env = Env::new().await;
    env.order("shared-word").await;
    SendMail {
        to: "shared-word".into(),
    }
    .enqueue(&env.client)
    .await
    .unwrap();
    let app = env.app(Options::new());
    assert_eq!(hits(&get(&app, "/search?q=shared").await.ok()).len(), 2);
    let page = get(&app, "/search?q=shared&topic=search-mail").await.ok();
    let rows = hits(&page);
    assert_eq!(rows.len(), 1, "{page}");
    assert_eq!(rows[0][0], "search-mail");
    assert!(
        page.contains("<option value=\"search-mail\" selected>"),
        "{page}"
    );
}

#[tokio::test]
async fn results_stream_in_batches_until_the_scan_ends() {
    let env = Env::new().await;
    let total = env.haystack().await;
    let app = env.app(Options::new());

    let first = get(&app, "/search?q=NEEDLE&topic=&mode=text").await.ok();
    assert!(first.contains("<html"), "{first}");
    let rows = hits(&first);
    assert_eq!(rows.len(), 1, "{first}");
    assert!(rows[0][4].contains("needle-first"), "{rows:?}");
    assert!(!first.contains("search finished"), "{first}");
    let more = attr(&first, "class=\"search-more\"", "hx-get");
    assert!(
        more.starts_with("/search?q=NEEDLE&topic=&mode=text&cursor="),
        "{more}"
    );
    assert!(more.ends_with("&part=more"), "{more}");
    assert_eq!(
        attr(&first, "class=\"search-more\"", "hx-trigger"),
        "revealed"
    );
    assert_eq!(
        attr(&first, "class=\"search-more\"", "hx-swap"),
        "outerHTML"
    );
    assert!(
        first.contains(&format!("scanned {} entries, 1 hit so far", BUDGET)),
        "{first}"
    );

    let batches = all_batches(&app, first).await;
    let rest = &batches[1..];
    assert!(!rest.is_empty());
    for batch in rest {
        assert!(!batch.contains("<html"), "a fragment: {batch}");
        assert!(batch.trim_start().starts_with("<tr"), "{batch}");
    }
    let later: Vec<Vec<String>> = rest.iter().flat_map(|b| hits(b)).collect();
    assert_eq!(later.len(), 1, "{rest:?}");
    assert!(later[0][4].contains("needle-last"), "{later:?}");
    let last = batches.last().unwrap();
    assert!(
        last.contains(&format!("search finished: 2 hits, scanned {total} entries")),
        "{last}"
    );

    // Without htmx the row links to the next batch as a whole page.
    let link = batches[0]
        .split("href=\"")
        .find(|s| s.starts_with("/search?") && !s.contains("part=more"))
        .map(|s| s[..s.find('"').unwrap()].replace("&amp;", "&"))
        .expect("a link to the next batch");
    let page = get(&app, &link).await.ok();
    assert!(page.contains("<html"), "{page}");
    assert!(hits(&page).iter().any(|r| r[4].contains("needle-last")));
}

#[tokio::test]
async fn a_topic_that_appears_mid_search_shifts_nothing() {
    let env = Env::new().await;
    env.haystack().await;
    let app = env.app(Options::new());
    let first = get(&app, "/search?q=needle").await.ok();
    assert_eq!(hits(&first).len(), 1, "{first}");
    let more = attr(&first, "class=\"search-more\"", "hx-get");
    assert!(more.contains("&at=search-orders&"), "{more}");

    // A topic that sorts first: the cursor's topic index now points one
    // topic early.
    let spec = EnqueueSpec {
        priority: Priority::Normal,
        delay: Duration::ZERO,
        ttl: None,
        max_retries: 0,
        index: false,
    };
    let payload = rmq::codec::encode(&"needle-new").unwrap();
    let job = NewJob {
        payload: &payload,
        id: None,
    };
    env.broker.record_topics(&["aaa-new"]).await.unwrap();
    env.broker.enqueue("aaa-new", &spec, &[job]).await.unwrap();

    let batches = all_batches(&app, first).await;
    let later: Vec<Vec<String>> = batches[1..].iter().flat_map(|b| hits(b)).collect();
    assert_eq!(later.len(), 1, "no topic searched twice: {later:?}");
    assert!(later[0][4].contains("needle-last"), "{later:?}");
    assert!(
        batches.last().unwrap().contains("search finished: 2 hits"),
        "{batches:?}"
    );
}

#[tokio::test]
async fn payloads_and_errors_are_escaped() {
    let env = Env::new().await;
    env.order(XSS).await;
    env.order(XSS).await;
    env.kill_next_order(XSS).await;
    let app = env.app(Options::new());
    let page = get(&app, "/search?q=alert(1)").await.ok();
    assert_eq!(hits(&page).len(), 2, "{page}");
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    // The query itself, echoed in the form and the continuation, too.
    let page = get(&app, "/search?q=%3Cscript%3E").await.ok();
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("value=\"&lt;script&gt;\""), "{page}");
    // Nothing a strict CSP would block.
    assert!(!page.contains(" style="), "{page}");
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script src=").count(),
        "{page}"
    );
}

#[tokio::test]
async fn an_empty_query_shows_the_form_and_a_bad_cursor_is_refused() {
    let env = Env::new().await;
    env.order("x").await;
    let app = env.app(Options::new());
    let page = get(&app, "/search").await.ok();
    assert!(
        page.contains("<form class=\"search\" method=\"get\""),
        "{page}"
    );
    assert!(page.contains("<option value=\"search-orders\">"), "{page}");
    assert!(!page.contains("<table"), "{page}");
    // The navigation links the page.
    assert!(
        page.contains("<a class=\"current\" href=\"/search\" aria-current=\"page\">Search</a>"),
        "{page}"
    );
    assert!(!get(&app, "/search?q=++").await.ok().contains("<table"));

    for path in [
        "/search?q=x&cursor=0.99.0",
        "/search?q=x&cursor=nope&part=more",
        "/search?q=x&cursor=0.0.18446744073709551615",
    ] {
        let refused = get(&app, path).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            refused.body.contains("bad search cursor"),
            "{path}: {}",
            refused.body
        );
    }
    // Counts carried in the address saturate instead of overflowing.
    get(
        &app,
        "/search?q=x&cursor=0.0.0&scanned=18446744073709551615&hits=18446744073709551615&part=more",
    )
    .await
    .ok();
    let refused = get(&app, "/search?q=x&mode=regex").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("use text or id"), "{}", refused.body);
}

#[tokio::test]
async fn nested_under_a_prefix_the_links_follow() {
    let env = Env::new().await;
    let items = (0..BUDGET + 1).map(|i| PlaceOrder {
        item: format!("item-{i}"),
    });
    env.client.enqueue_many(items).await.unwrap();
    let app = Router::new().nest("/admin", env.app(Options::new()));
    let page = get(&app, "/admin/search?q=item-7").await.ok();
    assert!(page.contains("action=\"/admin/search\""), "{page}");
    assert!(
        page.contains("href=\"/admin/topics/search-orders/entries/normal.7."),
        "{page}"
    );
    let more = attr(&page, "class=\"search-more\"", "hx-get");
    assert!(more.starts_with("/admin/search?"), "{more}");
    let last = all_batches(&app, page).await.pop().unwrap();
    assert!(last.contains("search finished"), "{last}");
}

#[tokio::test]
async fn a_client_without_redis_renders_an_error() {
    let app = rmq_web::router(Client::fake(), Options::new());
    for path in ["/search?q=x", "/search?q=x&part=more&cursor=0.0.0"] {
        let reply = get(&app, path).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(reply.body.contains("no Redis connection"), "{}", reply.body);
    }
}

#[rmq::task(topic = "search-quotes", keep_result = "1h")]
async fn price(item: String) -> Result<Vec<String>, TaskError> {
    Ok(vec![item, "9.50".into()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_mode_shows_the_kept_result_of_a_completed_job() {
    let env = Env::new().await;
    let job = Price { item: "tea".into() }
        .enqueue(&env.client)
        .await
        .unwrap();
    let worker = rmq::Worker::builder(env.client.clone())
        .task::<Price>()
        .build()
        .unwrap();
    let done = job.clone();
    tokio::time::timeout(
        Duration::from_secs(15),
        worker.run_until(async move {
            done.result().await.unwrap();
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let app = env.app(Options::new());
    let page = get(&app, &format!("/search?q={}&mode=id", job.id()))
        .await
        .ok();
    assert!(page.contains("data-state=\"completed\""), "{page}");
    let value = page
        .split("by-id-result-value")
        .nth(1)
        .expect("the result is shown");
    assert!(value.contains("tea") && value.contains("9.50"), "{page}");
    assert!(!page.contains("by-id-none"), "{page}");
}
