//! The dashboard against a real Redis: pages show the numbers of real jobs
//! in every state; security headers, CSRF, auth and read-only mode hold;
//! data is escaped; the router works nested under a prefix.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use rmq::broker::{
    EnqueueSpec, FailOutcome, Failure, NewJob, RunningJob, WorkerCommand, WorkerInfo, WorkerState,
};
use rmq::{Client, Priority, TaskError};
use rmq_web::{Auth, Options, CONTENT_SECURITY_POLICY};

use common::{
    assert_csp_clean, attr, cells, csrf_token, get, get_with, now_ms, post, Env, Reply, LEASE, XSS,
};

#[rmq::task(topic = "web-orders", retries = 0)]
async fn place_order(item: String) -> Result<(), TaskError> {
    let _ = item;
    Ok(())
}

#[rmq::task(topic = "web-mail", priority = High, timeout = "30s")]
async fn send_mail(to: String) -> Result<(), TaskError> {
    let _ = to;
    Ok(())
}

const WORKER: &str = "web-host-4242-abc";

impl Env {
    /// Jobs in every state:
    /// - web-orders: 5 enqueued; 1 completed, 1 dead, 1 processing, 2 pending (normal);
    /// - web-mail: 1 pending (high), 1 delayed;
    /// - the XSS topic: 1 dead and 1 parse error, both with the XSS error.
    async fn with_jobs() -> Env {
        let env = Env::new().await;
        for item in ["a", "b", "c", "d", "e"] {
            PlaceOrder { item: item.into() }
                .enqueue(&env.client)
                .await
                .unwrap();
        }
        let jobs = env.broker.fetch("web-orders", 3, LEASE).await.unwrap().jobs;
        assert_eq!(jobs.len(), 3);
        env.broker
            .ack("web-orders", &jobs[..1], &[Duration::from_millis(3)])
            .await
            .unwrap();
        let failure = Failure {
            error: "card declined",
            permanent: true,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        let outcome = env
            .broker
            .fail("web-orders", &jobs[1], &failure)
            .await
            .unwrap();
        assert_eq!(outcome, FailOutcome::Dead);

        SendMail { to: "x@y".into() }
            .enqueue(&env.client)
            .await
            .unwrap();
        SendMail {
            to: "later@y".into(),
        }
        .delay(Duration::from_secs(3600))
        .enqueue(&env.client)
        .await
        .unwrap();

        let spec = EnqueueSpec {
            priority: Priority::Normal,
            delay: Duration::ZERO,
            ttl: None,
            max_retries: 0,
            index: false,
        };
        let payload = rmq::codec::encode(&XSS).unwrap();
        let job = NewJob {
            payload: &payload,
            id: None,
        };
        env.broker.record_topics(&[XSS]).await.unwrap();
        env.broker.enqueue(XSS, &spec, &[job, job]).await.unwrap();
        let jobs = env.broker.fetch(XSS, 2, LEASE).await.unwrap().jobs;
        assert!(env.broker.reject(XSS, &jobs[0], XSS).await.unwrap());
        let failure = Failure {
            error: XSS,
            permanent: true,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        env.broker.fail(XSS, &jobs[1], &failure).await.unwrap();
        env
    }

    /// A live worker heartbeat (as `run` writes it), running one job.
    async fn beat(&self, id: &str, host: &str) {
        let now = now_ms();
        let info = WorkerInfo {
            id: id.to_owned(),
            host: host.to_owned(),
            pid: 4242,
            version: "9.8.7".to_owned(),
            topics: vec!["web-orders".to_owned(), "web-mail".to_owned()],
            concurrency: 8,
            busy: 1,
            jobs: vec![RunningJob {
                topic: "web-orders".to_owned(),
                id: format!("job-{XSS}"),
                started_at_ms: now - 1500,
            }],
            state: WorkerState::Running,
            started_at_ms: now - 3_723_000,
            last_beat_ms: now,
            beat_interval_ms: 60_000,
        };
        self.broker.beat(&info).await.unwrap();
    }
}

/// The `value` span of the card labelled `label`.
fn card(html: &str, label: &str) -> String {
    let marker = format!("<span class=\"label\">{label}</span><span class=\"value\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no card {label} in {html}"));
    let rest = &html[at + marker.len()..];
    let start = rest.find('>').unwrap() + 1;
    rest[start..start + rest[start..].find('<').unwrap()].to_owned()
}

/// The cells of the table row with `data-<kind>="<key>"`.
fn row_cells(html: &str, kind: &str, key: &str) -> Vec<String> {
    let marker = format!("<tr data-{kind}=\"{key}\">");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no row {key} in {html}"));
    let row = &html[at..at + html[at..].find("</tr>").unwrap()];
    cells(row)
}

#[tokio::test]
async fn overview_shows_totals_charts_workers_and_redis() {
    let env = Env::with_jobs().await;
    env.beat(WORKER, "web-host").await;
    let app = env.app(Options::new());
    let page = get(&app, "/").await.ok();
    assert_eq!(card(&page, "Pending"), "3");
    assert_eq!(card(&page, "Delayed"), "1");
    assert_eq!(card(&page, "Processing"), "1");
    assert_eq!(card(&page, "Dead"), "2");
    assert_eq!(card(&page, "Parse errors"), "1");
    assert_eq!(card(&page, "Completed"), "1");
    assert_eq!(card(&page, "Workers alive"), "1");
    let failed: u64 = card(&page, "Failed attempts").parse().unwrap();
    let expected: u64 = ["web-orders", XSS].len() as u64;
    assert_eq!(failed, expected, "one permanent failure per topic");
    // An hour of minutes, with this minute's completion and dead-letters.
    assert!(page.contains("Completed per minute"), "{page}");
    assert_eq!(page.matches("class=\"bar-done\"").count(), 1, "{page}");
    assert_eq!(page.matches("class=\"bar-dead\"").count(), 1, "{page}");
    // (A minute may have turned since the ack: totals, not the last bar.)
    assert!(
        page.contains("Completed per minute</span><span>total <strong>1</strong>"),
        "{page}"
    );
    assert!(
        page.contains("Dead-lettered per minute</span><span>total <strong>2</strong>"),
        "{page}"
    );
    assert!(page.contains(": 2 dead-lettered</title>"), "{page}");
    assert!(page.contains("<span>-60 min</span>"), "{page}");
    // Redis facts; the test server does not evict.
    assert!(page.contains("Eviction policy"), "{page}");
    assert!(page.contains("noeviction"), "{page}");
    assert!(!page.contains("may evict keys"), "{page}");
    assert!(page.contains("href=\"/workers\""), "{page}");
    // The live region refreshes itself, and its part alone renders.
    assert_eq!(attr(&page, "id=\"overview\"", "hx-get"), "/?part=live");
    assert_eq!(attr(&page, "id=\"overview\"", "hx-trigger"), "every 2s");
    let live = get(&app, "/?part=live").await.ok();
    assert!(!live.contains("<html"), "{live}");
    assert_eq!(card(&live, "Pending"), "3");
}

#[tokio::test]
async fn overview_warns_when_redis_evicts_keys() {
    let env = Env::new().await;
    let mut raw = redis::Client::open(env.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut raw)
        .await
        .unwrap();
    let page = get(&env.app(Options::new()), "/").await.ok();
    assert!(page.contains("may evict keys"), "{page}");
    assert!(page.contains("allkeys-lru"), "{page}");
}

#[tokio::test]
async fn topics_page_shows_one_row_per_topic() {
    let env = Env::with_jobs().await;
    let app = env.app(Options::new());
    let page = get(&app, "/topics").await.ok();
    // Topic, high, normal, low, delayed, processing, dead, parse errors,
    // oldest pending, done last min, p99.
    let orders = row_cells(&page, "topic", "web-orders");
    assert_eq!(
        orders[..8],
        ["web-orders", "0", "2", "0", "0", "1", "1", "0"]
    );
    assert_ne!(orders[8], "-", "two jobs wait: {orders:?}");
    assert_eq!(
        orders[10], "3.1ms",
        "3 ms sits in the 2-4 ms bucket: {orders:?}"
    );
    let mail = row_cells(&page, "topic", "web-mail");
    assert_eq!(mail[..8], ["web-mail", "1", "0", "0", "1", "0", "0", "0"]);
    assert_eq!(mail[10], "-");
    let xss = row_cells(&page, "topic", "&lt;script&gt;alert(1)&lt;/script&gt;");
    assert_eq!(xss[6..8], ["1", "1"]);
    // Only the body of the table refreshes.
    assert_eq!(
        attr(&page, "id=\"topic-rows\"", "hx-get"),
        "/topics?part=live"
    );
    let live = get(&app, "/topics?part=live").await.ok();
    assert!(live.trim_start().starts_with("<tr"), "{live}");
    assert!(!live.contains("<thead"), "{live}");
    assert_eq!(row_cells(&live, "topic", "web-orders")[2], "2");
}

#[tokio::test]
async fn workers_page_lists_heartbeats_and_tasks_page_the_linked_tasks() {
    let env = Env::new().await;
    env.beat(WORKER, "web-host").await;
    let app = env.app(Options::new());
    let page = get(&app, "/workers").await.ok();
    let cells = row_cells(&page, "worker", WORKER);
    assert_eq!(
        cells[..6],
        [
            WORKER,
            "web-host",
            "4242",
            "9.8.7",
            "web-orders, web-mail",
            "1/8"
        ]
    );
    assert!(
        cells[6].starts_with("web-orders/job-&lt;script&gt;"),
        "{cells:?}"
    );
    assert_eq!(cells[7], "1h 2m");
    assert_eq!(cells[8], "running");
    assert!(
        page.contains("hx-confirm=\"Quiet worker web-host-4242-abc?"),
        "{page}"
    );
    assert_eq!(
        attr(&page, "id=\"worker-rows\"", "hx-get"),
        "/workers?part=live"
    );

    let tasks = get(&app, "/tasks").await.ok();
    let orders = row_cells(&tasks, "topic", "web-orders");
    assert!(orders[1].ends_with("place_order"), "{orders:?}");
    assert!(orders[2].contains("item: String"), "{orders:?}");
    assert_eq!((orders[3].as_str(), orders[4].as_str()), ("normal", "0"));
    let mail = row_cells(&tasks, "topic", "web-mail");
    assert_eq!((mail[3].as_str(), mail[6].as_str()), ("high", "30.0s"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let env = Env::new().await;
    let app = env.app(Options::new().auth(Auth::token("tok")));
    let check = |reply: &Reply, what: &str| {
        let h = &reply.headers;
        assert_eq!(
            h["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{what}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
    };
    let bearer = [("authorization", "Bearer tok")];
    for path in ["/", "/topics", "/workers", "/tasks", "/healthz"] {
        let reply = get_with(&app, path, &bearer).await;
        check(&reply, path);
        let body = reply.ok();
        // Nothing a strict CSP would block: no inline script or style.
        assert_csp_clean(&body, path);
    }
    check(&get(&app, "/").await, "401");
    check(&post(&app, "/workers/x/quiet", &bearer, "").await, "403");
    assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self'"));
    assert!(CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
}

#[tokio::test]
async fn pages_load_assets_from_the_router_with_htmx_configured_for_csp() {
    let env = Env::new().await;
    let app = env.app(Options::new());
    let page = get(&app, "/").await.ok();
    let config = attr(&page, "name=\"htmx-config\"", "content");
    assert!(
        config.contains("&quot;includeIndicatorStyles&quot;:false"),
        "{config}"
    );
    assert!(config.contains("&quot;allowEval&quot;:false"), "{config}");
    let token = csrf_token(&page);
    assert_eq!(token.len(), 64);
    assert_eq!(
        attr(&page, "<body", "hx-headers"),
        format!("{{&quot;X-CSRF-Token&quot;:&quot;{token}&quot;}}")
    );
    let js = attr(&page, "<script", "src");
    let css = attr(&page, "rel=\"stylesheet\"", "href");
    assert!(
        js.starts_with(&format!("/assets/htmx-{}-", rmq_web::HTMX_VERSION)),
        "{js}"
    );
    let script = get(&app, &js).await;
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(script.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(script.ok().contains("htmx"));
    let sheet = get(&app, &css).await;
    assert_eq!(sheet.headers["content-type"], "text/css; charset=utf-8");
    assert!(sheet.ok().contains("prefers-color-scheme: dark"));
    assert_eq!(
        get(&app, "/assets/htmx-0.0.0.min.js").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn actions_need_the_csrf_token_and_the_same_origin() {
    let env = Env::new().await;
    env.beat(WORKER, "web-host").await;
    let app = env.app(Options::new());
    let token = csrf_token(&get(&app, "/workers").await.ok());
    let path = format!("/workers/{WORKER}/quiet");
    let control = || async { env.broker.worker_control(WORKER).await.unwrap().0 };

    let refused = post(&app, &path, &[("hx-request", "true")], "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("no CSRF token"), "{}", refused.body);
    let wrong = post(&app, &path, &[("x-csrf-token", "00ff")], "").await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("CSRF token is wrong"), "{}", wrong.body);
    let with_token = [("x-csrf-token", token.as_str())];
    for (name, value) in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let mut headers = with_token.to_vec();
        headers.push((name, value));
        let refused = post(&app, &path, &headers, "").await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{name}");
        assert!(refused.body.contains("refused"), "{}", refused.body);
    }
    assert_eq!(control().await, None, "nothing was sent");

    // htmx: the token in the header, the message as a fragment.
    let mut headers = with_token.to_vec();
    headers.extend([
        ("hx-request", "true"),
        ("sec-fetch-site", "same-origin"),
        ("origin", "http://localhost:9090"),
    ]);
    let sent = post(&app, &path, &headers, "").await.ok();
    assert!(
        sent.contains(&format!("sent quiet to worker {WORKER}")),
        "{sent}"
    );
    assert!(!sent.contains("<html"), "{sent}");
    assert_eq!(control().await, Some(WorkerCommand::Quiet));

    // A plain form: the token in a field, the message in a whole page.
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let body = format!("csrf={token}");
    let sent = post(&app, &format!("/workers/{WORKER}/stop"), &form, &body)
        .await
        .ok();
    assert!(
        sent.contains(&format!("sent stop to worker {WORKER}")),
        "{sent}"
    );
    assert!(sent.contains("<html"), "{sent}");
    assert_eq!(control().await, Some(WorkerCommand::Stop));
    let wrong_field = post(&app, &format!("/workers/{WORKER}/stop"), &form, "csrf=0").await;
    assert_eq!(wrong_field.status, StatusCode::FORBIDDEN);

    let unknown = post(&app, "/workers/nobody/quiet", &with_token, "").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.body.contains("no live worker nobody"),
        "{}",
        unknown.body
    );
}

#[tokio::test]
async fn read_only_refuses_actions_and_shows_no_buttons() {
    let env = Env::new().await;
    env.beat(WORKER, "web-host").await;
    let writable = get(&env.app(Options::new()), "/workers").await.ok();
    assert!(writable.contains("<form"), "{writable}");
    assert!(writable.contains(">Quiet</button>"), "{writable}");

    let app = env.app(Options::new().read_only(true));
    let page = get(&app, "/workers").await.ok();
    assert_eq!(row_cells(&page, "worker", WORKER)[0], WORKER);
    assert!(!page.contains("<form"), "{page}");
    assert!(!page.contains("<button"), "{page}");
    assert!(!page.contains("Actions"), "{page}");
    assert!(page.contains("read-only"), "{page}");
    let token = csrf_token(&page);
    for command in ["quiet", "stop"] {
        let refused = post(
            &app,
            &format!("/workers/{WORKER}/{command}"),
            &[("x-csrf-token", token.as_str())],
            "",
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{command}");
        assert!(refused.body.contains("read-only"), "{}", refused.body);
    }
    assert_eq!(env.broker.worker_control(WORKER).await.unwrap().0, None);
}

#[tokio::test]
async fn token_auth_by_header_or_login_cookie() {
    let env = Env::new().await;
    let app = env.app(Options::new().auth(Auth::token("s3cret-token")));
    let denied = get(&app, "/topics").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert!(denied.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert!(
        denied.body.contains("name=\"token\""),
        "a login form: {}",
        denied.body
    );
    let wrong = get_with(&app, "/topics", &[("authorization", "Bearer nope")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    get_with(&app, "/topics", &[("authorization", "Bearer s3cret-token")])
        .await
        .ok();
    assert_eq!(
        get(&app, "/healthz").await.ok(),
        "ok\n",
        "probes need no token"
    );

    let bad_login = get(&app, "/topics?token=nope").await;
    assert_eq!(bad_login.status, StatusCode::UNAUTHORIZED);
    assert!(
        bad_login.body.contains("token is wrong"),
        "{}",
        bad_login.body
    );
    let login = get(&app, "/topics?token=s3cret-token&x=1").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    assert_eq!(login.headers["location"], "/topics?x=1");
    let cookie = login.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("s3cret-token"),
        "the cookie is not the token: {cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    get_with(&app, "/topics", &[("cookie", session)]).await.ok();
    let forged = get_with(&app, "/topics", &[("cookie", "rmq_web_session=00")]).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // A login never sends the browser to another site.
    for path in [
        "//evil.example/?token=s3cret-token",
        "/%5Cevil.example?token=s3cret-token",
    ] {
        let login = get(&app, path).await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "{path}");
        let location = login.headers["location"].to_str().unwrap();
        assert!(
            location.starts_with('/') && !location.starts_with("//"),
            "{location}"
        );
    }
    // A live region refreshed once the session is gone reloads the page.
    let live = get_with(&app, "/topics?part=live", &[("hx-request", "true")]).await;
    assert_eq!(live.status, StatusCode::UNAUTHORIZED);
    assert_eq!(live.headers["hx-refresh"], "true");
}

#[tokio::test]
async fn without_auth_only_loopback_host_names_are_served() {
    let env = Env::new().await;
    let app = env.app(Options::new());
    // DNS rebinding: a page of evil.example whose name now points at
    // 127.0.0.1 could otherwise read the dashboard and use its CSRF token.
    for host in ["evil.example:9090", "127.0.0.1.evil.example"] {
        let refused = get_with(&app, "/", &[("host", host)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{host}");
        assert!(refused.body.contains("RMQ_WEB_TOKEN"), "{}", refused.body);
    }
    for host in ["localhost:9090", "127.0.0.1:9090", "[::1]:9090"] {
        get_with(&app, "/", &[("host", host)]).await.ok();
    }
    let named = env.app(Options::new().host("dash.internal"));
    get_with(&named, "/", &[("host", "dash.internal:443")])
        .await
        .ok();
    let token = env.app(Options::new().auth(Auth::token("s3cret-token")));
    let authed = get_with(
        &token,
        "/",
        &[
            ("host", "evil.example"),
            ("authorization", "Bearer s3cret-token"),
        ],
    )
    .await;
    assert_eq!(
        authed.status,
        StatusCode::OK,
        "with auth the name does not matter"
    );
}

#[tokio::test]
async fn an_empty_secret_lets_nobody_in() {
    let env = Env::new().await;
    let app = env.app(Options::new().auth(Auth::token("")));
    let refused = get_with(&app, "/", &[("authorization", "Bearer ")]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let refused = get(&app, "/?token=").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let listen = "0.0.0.0:9090".parse().unwrap();
    assert!(rmq_web::check_listen(listen, &Options::new().auth(Auth::token(""))).is_err());
    assert!(rmq_web::check_listen(listen, &Options::new().auth(Auth::basic("ops", ""))).is_err());
}

#[tokio::test]
async fn basic_auth_asks_the_browser_for_credentials() {
    let env = Env::new().await;
    let app = env.app(Options::new().auth(Auth::basic("ops", "pa:ss")));
    let denied = get(&app, "/").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert!(denied.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic realm="));
    // ops:pa:ss and ops:wrong
    get_with(&app, "/", &[("authorization", "Basic b3BzOnBhOnNz")])
        .await
        .ok();
    let wrong = get_with(&app, "/", &[("authorization", "Basic b3BzOndyb25n")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn data_from_redis_is_escaped() {
    let env = Env::with_jobs().await;
    env.beat(&format!("w-{XSS}"), XSS).await;
    let app = env.app(Options::new());
    for path in ["/", "/topics", "/workers"] {
        let page = get(&app, path).await.ok();
        assert!(!page.contains(XSS), "{path}: {page}");
        assert!(!page.contains("<script>"), "{path}: {page}");
    }
    let topics = get(&app, "/topics").await.ok();
    assert!(
        topics.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{topics}"
    );
    let workers = get(&app, "/workers").await.ok();
    assert!(
        workers.contains("w-&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{workers}"
    );
    // The action links of that worker carry its id percent-encoded.
    assert!(
        workers.contains("/workers/w-%3Cscript%3Ealert%281%29%3C%2Fscript%3E/quiet"),
        "{workers}"
    );
    let token = csrf_token(&workers);
    let sent = post(
        &app,
        "/workers/w-%3Cscript%3Ealert%281%29%3C%2Fscript%3E/quiet",
        &[("x-csrf-token", token.as_str()), ("hx-request", "true")],
        "",
    )
    .await
    .ok();
    assert!(
        sent.contains("sent quiet to worker w-&lt;script&gt;"),
        "{sent}"
    );
}

#[tokio::test]
async fn nested_under_a_prefix_links_and_assets_resolve() {
    let env = Env::new().await;
    env.beat(WORKER, "web-host").await;
    let app = Router::new().nest("/admin", env.app(Options::new()));
    let page = get(&app, "/admin").await.ok();
    for link in ["/admin/topics", "/admin/workers", "/admin/tasks"] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}: {page}");
        get(&app, link).await.ok();
    }
    assert!(
        page.contains("<a class=\"brand\" href=\"/admin\">"),
        "{page}"
    );
    assert_eq!(attr(&page, "id=\"overview\"", "hx-get"), "/admin?part=live");
    get(&app, "/admin?part=live").await.ok();
    let js = attr(&page, "<script", "src");
    let css = attr(&page, "rel=\"stylesheet\"", "href");
    assert!(js.starts_with("/admin/assets/"), "{js}");
    get(&app, &js).await.ok();
    get(&app, &css).await.ok();
    let workers = get(&app, "/admin/workers").await.ok();
    assert_eq!(
        attr(&workers, "id=\"worker-rows\"", "hx-get"),
        "/admin/workers?part=live"
    );
    let action = format!("/admin/workers/{WORKER}/quiet");
    assert!(
        workers.contains(&format!("hx-post=\"{action}\"")),
        "{workers}"
    );
    let token = csrf_token(&workers);
    post(&app, &action, &[("x-csrf-token", token.as_str())], "")
        .await
        .ok();
    assert_eq!(
        env.broker.worker_control(WORKER).await.unwrap().0,
        Some(WorkerCommand::Quiet)
    );
    // The login cookie is scoped to the prefix.
    let app = Router::new().nest("/admin", env.app(Options::new().auth(Auth::token("t"))));
    let login = get(&app, "/admin/tasks?token=t").await;
    assert_eq!(login.headers["location"], "/admin/tasks");
    assert!(login.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Path=/admin;"));
}

#[tokio::test]
async fn a_client_without_redis_renders_an_error_banner() {
    let app = rmq_web::router(Client::fake(), Options::new());
    for path in [
        "/",
        "/topics",
        "/workers",
        "/?part=live",
        "/topics?part=live",
    ] {
        let reply = get(&app, path).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            reply.body.contains("no Redis connection"),
            "{path}: {}",
            reply.body
        );
        assert!(
            reply.body.contains("role=\"alert\""),
            "{path}: {}",
            reply.body
        );
    }
    assert_eq!(
        get(&app, "/healthz").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    get(&app, "/tasks").await.ok();
}

#[tokio::test]
async fn metrics_are_served_only_when_asked() {
    let env = Env::with_jobs().await;
    assert_eq!(
        get(&env.app(Options::new()), "/metrics").await.status,
        StatusCode::NOT_FOUND
    );
    let app = env.app(Options::new().metrics(true).auth(Auth::token("t")));
    assert_eq!(get(&app, "/metrics").await.status, StatusCode::UNAUTHORIZED);
    let text = get_with(&app, "/metrics", &[("authorization", "Bearer t")])
        .await
        .ok();
    assert!(
        text.contains(
            "rmq_queue_jobs{topic=\"web-orders\",state=\"pending\",priority=\"normal\"} 2"
        ),
        "{text}"
    );
}
