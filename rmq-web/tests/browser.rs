//! The dashboard in a real browser: headless Chromium drives the router,
//! served on a loopback port, over a Redis of each test's own and, where
//! jobs must run, a worker in this process. Tests wait for what the page
//! or Redis shows, never for a fixed time.
//!
//! Each test saves a screenshot under `target/tmp/rmq-web-browser/`. With
//! `RMQ_UPDATE_SCREENSHOTS=1` the overview and the topic page are also
//! copied to `docs/images/`, which is how the images there are made.
//!
//! Without chromium and chromedriver the tests skip (with the reason
//! printed), unless `CI` is `true`: then they fail.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rmq::broker::{TopicStats, WorkerCommand, WorkerState};
use rmq::{Broker, Client, Config, JobId, State, TaskError, Worker};
use rmq_testkit::browser::fantoccini::Locator;
use rmq_testkit::browser::Browser;
use rmq_testkit::RedisServer;
use rmq_web::Options;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Safety net around every wait on Redis or a worker.
const LIMIT: Duration = Duration::from_secs(20);

/// How often the test worker beats: it turns quiet at its next beat.
const BEAT: Duration = Duration::from_millis(500);

// ---------------------------------------------------------------------------
// Tasks

/// Always succeeds.
#[rmq::task(topic = "bw-orders")]
async fn bw_order(item: String) -> Result<(), TaskError> {
    let _ = item;
    Ok(())
}

/// No test worker serves this topic: its jobs stay where they were put.
#[rmq::task(topic = "bw-notes")]
async fn bw_note(note: String) -> Result<(), TaskError> {
    let _ = note;
    Ok(())
}

/// Fails permanently (dead-lettered at once) while the flag is not set in
/// Redis, succeeds once it is.
#[rmq::task(topic = "bw-flaky", retries = 0)]
async fn bw_flaky(n: u32, flag: State<Flag>) -> Result<(), TaskError> {
    let _ = n;
    if flag.is_set().await? {
        Ok(())
    } else {
        Err(TaskError::permanent("the flag is not set yet"))
    }
}

/// The topic the pause test pauses.
#[rmq::task(topic = "bw-reports")]
async fn bw_report(n: u32) -> Result<(), TaskError> {
    let _ = n;
    Ok(())
}

/// A key in the test's Redis that `bw_flaky` reads.
#[derive(Clone)]
struct Flag(redis::aio::MultiplexedConnection);

impl Flag {
    const KEY: &'static str = "browser-test:flag";

    async fn is_set(&self) -> Result<bool, TaskError> {
        let mut conn = self.0.clone();
        redis::cmd("EXISTS")
            .arg(Flag::KEY)
            .query_async(&mut conn)
            .await
            .map_err(TaskError::retryable)
    }

    async fn set(&self) {
        let mut conn = self.0.clone();
        let _: () = redis::cmd("SET")
            .arg(Flag::KEY)
            .arg(1)
            .query_async(&mut conn)
            .await
            .expect("set the flag");
    }
}

// ---------------------------------------------------------------------------
// Harness

/// A Redis, the dashboard on a loopback port, and a browser.
struct Dash {
    redis: RedisServer,
    client: Client,
    /// `http://127.0.0.1:<port>`, no trailing slash.
    url: String,
    browser: Browser,
    server: JoinHandle<()>,
}

impl Dash {
    /// `None` when there is no browser here (the test then skips).
    async fn start(options: Options) -> Option<Dash> {
        let browser = Browser::start().await.expect("start the browser")?;
        let redis = RedisServer::start();
        let mut config = Config::default();
        config.redis_url = redis.url();
        config.connection_pool_size = 4;
        config.heartbeat_interval = BEAT;
        config.retry_delays = vec![Duration::from_millis(10)];
        config.shutdown_grace = Duration::from_secs(2);
        let client = Client::connect(config)
            .await
            .expect("connect to the test Redis");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let app = rmq_web::router(client.clone(), options);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("serve the dashboard");
        });
        Some(Dash {
            redis,
            client,
            url,
            browser,
            server,
        })
    }

    fn broker(&self) -> &Broker {
        self.client.broker().expect("a Redis client")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn goto(&self, path: &str) {
        self.browser.goto(&self.url(path)).await.unwrap();
    }

    async fn flag(&self) -> Flag {
        let conn = redis::Client::open(self.redis.url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("a raw connection");
        Flag(conn)
    }

    async fn stats(&self, topic: &str) -> TopicStats {
        self.broker().stats(topic).await.expect("stats")
    }

    /// Waits until the stats of `topic` satisfy `done`.
    async fn wait_stats(&self, topic: &str, what: &str, done: impl Fn(&TopicStats) -> bool) {
        eventually(what, async || {
            let stats = self.stats(topic).await;
            done(&stats).then_some(())
        })
        .await;
    }

    /// Starts a worker with `build` applied to its builder, and waits
    /// until its heartbeat is in Redis.
    async fn worker(
        &self,
        build: impl FnOnce(rmq::WorkerBuilder) -> rmq::WorkerBuilder,
    ) -> RunningWorker {
        let worker = build(Worker::builder(self.client.clone()))
            .concurrency(2)
            .build()
            .expect("build the worker");
        let id = worker.id().to_owned();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(worker.run_until(async move {
            let _ = stopped.await;
        }));
        eventually("the worker's first heartbeat", async || {
            let workers = self.broker().workers().await.expect("list workers");
            workers.iter().any(|w| w.id == id).then_some(())
        })
        .await;
        RunningWorker {
            id,
            stop: Some(stop),
            task,
        }
    }

    /// The state the worker's last heartbeat reported.
    async fn worker_state(&self, id: &str) -> Option<WorkerState> {
        let workers = self.broker().workers().await.expect("list workers");
        workers.into_iter().find(|w| w.id == id).map(|w| w.state)
    }

    /// Saves a screenshot as `name`.png under the test target directory,
    /// and also as `docs/images/<docs>` when asked to
    /// (`RMQ_UPDATE_SCREENSHOTS=1`).
    async fn screenshot(&self, name: &str, docs: Option<&str>) -> PathBuf {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("rmq-web-browser")
            .join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        self.browser.screenshot(&path).await.unwrap();
        let png = std::fs::read(&path).expect("the screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {path:?}");
        if let (Some(docs), true) = (docs, update_screenshots()) {
            let target = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../docs/images")
                .join(docs);
            std::fs::create_dir_all(target.parent().expect("a parent")).expect("docs/images");
            std::fs::copy(&path, &target).expect("copy the screenshot to docs/images");
        }
        path
    }
}

impl Drop for Dash {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn update_screenshots() -> bool {
    std::env::var("RMQ_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1" || v == "true")
}

/// A worker running in this process until [`RunningWorker::stop`].
struct RunningWorker {
    id: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), rmq::Error>>,
}

impl RunningWorker {
    /// Stops the worker gracefully and checks that it ran without error.
    async fn stop(mut self) {
        drop(self.stop.take());
        tokio::time::timeout(LIMIT, &mut self.task)
            .await
            .expect("the worker did not stop in time")
            .expect("the worker panicked")
            .expect("the worker failed");
    }
}

/// Polls `probe` until it returns `Some`, failing the test after [`LIMIT`].
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `script` in the page (through WebDriver, which the page's CSP does
/// not restrict) with `args`, and returns its JSON result; a returned
/// promise is awaited.
async fn script(
    browser: &Browser,
    script: &str,
    args: Vec<serde_json::Value>,
) -> serde_json::Value {
    browser
        .client()
        .execute(script, args)
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// The overview's cards as (label, value), as rendered now.
async fn cards(browser: &Browser) -> Vec<(String, String)> {
    let value = script(
        browser,
        "return Array.from(document.querySelectorAll('.cards .card')).map(card => [
            card.querySelector('.label').innerText.trim(),
            card.querySelector('.value').innerText.trim(),
        ]);",
        Vec::new(),
    )
    .await;
    serde_json::from_value(value).expect("pairs of strings")
}

/// The rendered text of each cell of the table row matching `css`.
async fn row_cells(browser: &Browser, css: &str) -> Vec<String> {
    let value = script(
        browser,
        "return Array.from(document.querySelectorAll(arguments[0] + ' > td'))
             .map(td => td.innerText.trim());",
        vec![css.into()],
    )
    .await;
    serde_json::from_value(value).expect("strings")
}

/// Waits until the overview's card `label` shows `value`.
async fn wait_for_card(browser: &Browser, label: &str, value: &str) {
    let deadline = Instant::now() + browser.wait_timeout();
    loop {
        let now = cards(browser).await;
        if now.iter().any(|(l, v)| l == label && v == value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "card {label:?} did not show {value:?} within {:?}; cards: {now:?}",
            browser.wait_timeout()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the element matching the CSS selector `css`; looks again when
/// a live refresh replaced it between finding and clicking.
async fn click(browser: &Browser, css: &str) {
    retry_stale(|| browser.click(css)).await;
}

/// Clicks the first link or button under `<main>` whose text starts with
/// `text`, waiting for it to appear.
async fn click_text(browser: &Browser, text: &str) {
    let xpath = format!(
        "(//main//a[starts-with(normalize-space(.), {q})] \
         | //main//button[starts-with(normalize-space(.), {q})])[1]",
        q = xpath_literal(text)
    );
    click_xpath(browser, &xpath).await;
}

/// Clicks the first link under `<main>` that points at or shows `needle`.
async fn click_link_to(browser: &Browser, needle: &str) {
    let xpath = format!(
        "(//main//a[contains(@href, {q}) or contains(normalize-space(.), {q})])[1]",
        q = xpath_literal(needle)
    );
    click_xpath(browser, &xpath).await;
}

async fn click_xpath(browser: &Browser, xpath: &str) {
    let deadline = Instant::now() + browser.wait_timeout();
    loop {
        let found = browser.client().find(Locator::XPath(xpath)).await;
        match found {
            Ok(element) => match element.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() => {}
                Err(e) => panic!("click {xpath}: {e}"),
            },
            Err(e) if e.is_no_such_element() => {}
            Err(e) => panic!("find {xpath}: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "nothing matches {xpath} within {:?}",
            browser.wait_timeout()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `text` as an XPath string literal (it holds no double quote).
fn xpath_literal(text: &str) -> String {
    assert!(!text.contains('"'), "{text}");
    format!("\"{text}\"")
}

/// Retries `action` while it fails on an element a live refresh replaced.
async fn retry_stale<F, Fut>(action: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + LIMIT;
    loop {
        match action().await {
            Ok(()) => return,
            Err(e) if e.contains("stale element") && Instant::now() < deadline => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// Whether `<main>` mentions `needle` anywhere: in its text, a link or an
/// attribute.
async fn main_mentions(browser: &Browser, needle: &str) -> bool {
    script(
        browser,
        "const main = document.querySelector('main') || document.body;
         return main.innerHTML.includes(arguments[0]);",
        vec![needle.into()],
    )
    .await
    .as_bool()
    .expect("a boolean")
}

/// Waits until `<main>` mentions `needle` (`present`) or no longer does.
async fn wait_mentions(browser: &Browser, needle: &str, present: bool) {
    let deadline = Instant::now() + browser.wait_timeout();
    while main_mentions(browser, needle).await != present {
        let text = browser.text("main").await.unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "{needle:?} {} the page within {:?}; it shows: {text}",
            if present {
                "did not appear on"
            } else {
                "did not leave"
            },
            browser.wait_timeout()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Accepts a confirm dialog if the page asks one, until `done` holds
/// (an action that may or may not ask first).
async fn confirm_if_asked_until(browser: &Browser, what: &str, done: impl AsyncFn() -> bool) {
    eventually(what, async || {
        if browser.client().get_alert_text().await.is_ok() {
            browser.accept_confirm().await.unwrap();
        }
        done().await.then_some(())
    })
    .await;
}

/// `POST path` from the page with `fetch`, with `token` in the CSRF
/// header if any; returns the status and the body.
async fn post_from_page(browser: &Browser, path: &str, token: Option<&str>) -> (u64, String) {
    let reply = script(
        browser,
        "const [path, token] = arguments;
         const headers = token === null ? {} : { 'X-CSRF-Token': token };
         return fetch(path, { method: 'POST', headers })
             .then(async reply => [reply.status, await reply.text()]);",
        vec![path.into(), token.into()],
    )
    .await;
    serde_json::from_value(reply).expect("[status, body]")
}

fn pending(stats: &TopicStats) -> u64 {
    stats.pending.iter().sum()
}

// ---------------------------------------------------------------------------
// What the dashboard does now

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overview_shows_totals_of_real_jobs_and_live_workers() {
    let Some(dash) = Dash::start(Options::new()).await else {
        return;
    };
    let flag = dash.flag().await;
    let worker = dash
        .worker(|w| w.task::<BwOrder>().task::<BwFlaky>().state(flag))
        .await;
    for item in ["tea", "coffee", "cake", "bread", "jam", "honey", "milk"] {
        BwOrder { item: item.into() }
            .enqueue(&dash.client)
            .await
            .unwrap();
    }
    for n in 0..2 {
        BwFlaky { n }.enqueue(&dash.client).await.unwrap();
    }
    for note in ["call back", "ship friday", "gift wrap"] {
        BwNote { note: note.into() }
            .enqueue(&dash.client)
            .await
            .unwrap();
    }
    BwNote {
        note: "remind tomorrow".into(),
    }
    .delay(Duration::from_secs(3600))
    .enqueue(&dash.client)
    .await
    .unwrap();
    dash.wait_stats("bw-orders", "7 orders completed", |s| s.completed == 7)
        .await;
    dash.wait_stats("bw-flaky", "2 flaky jobs dead", |s| s.dead == 2)
        .await;

    dash.goto("/").await;
    dash.browser.wait_for_text("h1", "Overview").await.unwrap();
    let cards = cards(&dash.browser).await;
    let card = |label: &str| {
        cards
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no card {label}: {cards:?}"))
    };
    assert_eq!(card("Pending"), "3", "{cards:?}");
    assert_eq!(card("Delayed"), "1", "{cards:?}");
    assert_eq!(card("Processing"), "0", "{cards:?}");
    assert_eq!(card("Dead"), "2", "{cards:?}");
    assert_eq!(card("Parse errors"), "0", "{cards:?}");
    assert_eq!(card("Completed"), "7", "{cards:?}");
    assert_eq!(card("Failed attempts"), "2", "{cards:?}");
    assert_eq!(card("Workers alive"), "1", "{cards:?}");
    assert_eq!(dash.browser.text("#workers-alive").await.unwrap(), "1");
    dash.browser
        .wait_for_text("main", "Completed per minute")
        .await
        .unwrap();

    // The live region refreshes itself (htmx under the strict CSP).
    BwNote {
        note: "one more".into(),
    }
    .enqueue(&dash.client)
    .await
    .unwrap();
    wait_for_card(&dash.browser, "Pending", "4").await;

    dash.screenshot("overview", Some("dashboard-overview.png"))
        .await;

    // The card links to the workers page.
    click(&dash.browser, "a.card[href$='/workers']").await;
    dash.browser.wait_for_text("h1", "Workers").await.unwrap();

    // The same jobs, per topic.
    dash.goto("/topics").await;
    dash.browser
        .wait_for_text("tr[data-topic='bw-flaky']", "bw-flaky")
        .await
        .unwrap();
    // Topic, high, normal, low, delayed, processing, dead, ...
    let flaky = row_cells(&dash.browser, "tr[data-topic='bw-flaky']").await;
    assert_eq!(flaky[..7], ["bw-flaky", "0", "0", "0", "0", "0", "2"]);
    let notes = row_cells(&dash.browser, "tr[data-topic='bw-notes']").await;
    assert_eq!(notes[..7], ["bw-notes", "0", "4", "0", "1", "0", "0"]);
    dash.screenshot("topics", None).await;
    dash.goto("/tasks").await;
    dash.browser
        .wait_for_text("main", "bw_flaky")
        .await
        .unwrap();
    dash.screenshot("tasks", None).await;

    // A worker that stops gracefully removes its heartbeat.
    worker.stop().await;
    dash.goto("/").await;
    wait_for_card(&dash.browser, "Workers alive", "0").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_page_quiets_a_live_worker() {
    let Some(dash) = Dash::start(Options::new()).await else {
        return;
    };
    let worker = dash.worker(|w| w.task::<BwOrder>()).await;
    let row = format!("tr[data-worker=\"{}\"]", worker.id);

    dash.goto("/workers").await;
    dash.browser.wait_for_text(&row, "running").await.unwrap();
    dash.browser.wait_for_text(&row, "bw-orders").await.unwrap();
    click(
        &dash.browser,
        &format!("{row} form[action$='/quiet'] button"),
    )
    .await;
    let question = dash.browser.accept_confirm().await.unwrap();
    assert!(
        question.starts_with(&format!("Quiet worker {}?", worker.id)),
        "{question}"
    );
    dash.browser
        .wait_for_text("#flash", &format!("sent quiet to worker {}", worker.id))
        .await
        .unwrap();
    eventually("the worker turns quiet at its next beat", async || {
        (dash.worker_state(&worker.id).await == Some(WorkerState::Quiet)).then_some(())
    })
    .await;
    // The table refreshes itself and shows it.
    dash.browser
        .wait_for_text(&format!("{row} .state"), "quiet")
        .await
        .unwrap();
    dash.screenshot("workers-quiet", None).await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_pages_have_no_actions() {
    let Some(dash) = Dash::start(Options::new().read_only(true)).await else {
        return;
    };
    let worker = dash.worker(|w| w.task::<BwOrder>()).await;
    let row = format!("tr[data-worker=\"{}\"]", worker.id);

    dash.goto("/workers").await;
    dash.browser.wait_for_text(&row, &worker.id).await.unwrap();
    dash.browser
        .wait_for_text("header .mode", "read-only")
        .await
        .unwrap();
    let forms = dash.browser.find_all("form").await.unwrap();
    let buttons = dash.browser.find_all("button").await.unwrap();
    assert!(
        forms.is_empty(),
        "{} form(s) on a read-only page",
        forms.len()
    );
    assert!(
        buttons.is_empty(),
        "{} button(s) on a read-only page",
        buttons.len()
    );
    let headers = dash.browser.text("table thead").await.unwrap();
    assert!(!headers.contains("Actions"), "{headers}");
    dash.screenshot("workers-read-only", None).await;

    // The topic page and a job's detail: no action either.
    BwNote {
        note: "read only".into(),
    }
    .job_id("note-read-only")
    .enqueue(&dash.client)
    .await
    .unwrap();
    dash.goto("/topics/bw-notes?state=normal").await;
    wait_mentions(&dash.browser, "note-read-only", true).await;
    for page in ["topic", "job detail"] {
        let forms = dash.browser.find_all("main form").await.unwrap();
        let buttons = dash.browser.find_all("main button").await.unwrap();
        let boxes = dash.browser.find_all("main input").await.unwrap();
        assert!(
            forms.is_empty() && buttons.is_empty() && boxes.is_empty(),
            "{page}: {} form(s), {} button(s), {} input(s) on a read-only page",
            forms.len(),
            buttons.len(),
            boxes.len()
        );
        if page == "topic" {
            click_link_to(&dash.browser, "note-read-only").await;
            dash.browser.wait_for("#entry-detail").await.unwrap();
        }
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_the_csrf_token_is_refused() {
    let Some(dash) = Dash::start(Options::new()).await else {
        return;
    };
    let worker = dash.worker(|w| w.task::<BwOrder>()).await;
    dash.goto("/workers").await;
    dash.browser
        .wait_for(&format!("tr[data-worker=\"{}\"]", worker.id))
        .await
        .unwrap();
    let action = format!("/workers/{}/quiet", worker.id);

    let (status, body) = post_from_page(&dash.browser, &action, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no CSRF token"), "{body}");
    let (status, body) = post_from_page(&dash.browser, &action, Some("00ff")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF token is wrong"), "{body}");
    let control = dash.broker().worker_control(&worker.id).await.unwrap().0;
    assert_eq!(control, None, "a refused request sent nothing");

    let token = script(
        &dash.browser,
        "return document.querySelector('meta[name=\"csrf-token\"]').content;",
        Vec::new(),
    )
    .await;
    let token = token.as_str().expect("a token").to_owned();
    assert_eq!(token.len(), 64, "{token}");
    let (status, body) = post_from_page(&dash.browser, &action, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("sent quiet to worker {}", worker.id)),
        "{body}"
    );
    let control = dash.broker().worker_control(&worker.id).await.unwrap().0;
    assert_eq!(control, Some(WorkerCommand::Quiet));
    eventually("the worker turns quiet", async || {
        (dash.worker_state(&worker.id).await == Some(WorkerState::Quiet)).then_some(())
    })
    .await;
    dash.screenshot("csrf", None).await;
    worker.stop().await;
}

// ---------------------------------------------------------------------------
// Pages being built: the topic page (tabs, job detail, actions) and search

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_job_retried_from_its_detail_page_runs() {
    let Some(dash) = Dash::start(Options::new()).await else {
        return;
    };
    let flag = dash.flag().await;
    let worker = dash
        .worker(|w| w.task::<BwFlaky>().state(flag.clone()))
        .await;
    let mut ids: Vec<JobId> = Vec::new();
    // Ids that no count or date on the page can contain by chance.
    for n in 0..3 {
        let job = BwFlaky { n }.job_id(format!("flaky-job-{n}"));
        ids.push(job.enqueue(&dash.client).await.unwrap());
    }
    dash.wait_stats("bw-flaky", "3 jobs dead", |s| s.dead == 3)
        .await;
    let id = ids[1].to_string();

    // Topics page -> the topic -> its dead tab -> the job.
    dash.goto("/topics").await;
    click_link_to(&dash.browser, "bw-flaky").await;
    dash.browser
        .wait_for_text("main", "bw-flaky")
        .await
        .unwrap();
    click_text(&dash.browser, "Dead").await;
    wait_mentions(&dash.browser, &id, true).await;
    click_link_to(&dash.browser, &id).await;
    dash.browser.wait_for_text("main", &id).await.unwrap();
    dash.browser
        .wait_for_text("main", "the flag is not set yet")
        .await
        .unwrap();

    // The handler succeeds from now on.
    flag.set().await;
    click_text(&dash.browser, "Retry").await;
    dash.browser.accept_confirm().await.unwrap();
    dash.wait_stats("bw-flaky", "the retried job runs", |s| {
        s.completed == 1 && s.dead == 2
    })
    .await;

    dash.goto("/topics").await;
    click_link_to(&dash.browser, "bw-flaky").await;
    dash.browser
        .wait_for_text("main", "bw-flaky")
        .await
        .unwrap();
    click_text(&dash.browser, "Dead").await;
    wait_mentions(&dash.browser, &ids[0].to_string(), true).await;
    wait_mentions(&dash.browser, &id, false).await;
    dash.screenshot("topic", Some("dashboard-topic.png")).await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_topic_is_not_served_until_resumed() {
    let Some(dash) = Dash::start(Options::new()).await else {
        return;
    };
    let worker = dash
        .worker(|w| w.task::<BwReport>().task::<BwOrder>())
        .await;
    // The topic must exist before it has a page: one job, run at once.
    BwReport { n: 0 }.enqueue(&dash.client).await.unwrap();
    dash.wait_stats("bw-reports", "the first report runs", |s| s.completed == 1)
        .await;

    dash.goto("/topics").await;
    click_link_to(&dash.browser, "bw-reports").await;
    dash.browser
        .wait_for_text("main", "bw-reports")
        .await
        .unwrap();
    click_text(&dash.browser, "Pause").await;
    dash.browser.accept_confirm().await.unwrap();
    eventually("the topic is paused in Redis", async || {
        dash.broker()
            .is_paused("bw-reports")
            .await
            .unwrap()
            .then_some(())
    })
    .await;
    // The page now offers to resume.
    let resume = "(//main//a[starts-with(normalize-space(.), \"Resume\")] \
                  | //main//button[starts-with(normalize-space(.), \"Resume\")])[1]";
    eventually("a Resume button", async || {
        dash.browser
            .client()
            .find(Locator::XPath(resume))
            .await
            .ok()
            .map(drop)
    })
    .await;

    // The worker takes another topic's job but not the paused one's.
    BwReport { n: 1 }.enqueue(&dash.client).await.unwrap();
    BwOrder {
        item: "while paused".into(),
    }
    .enqueue(&dash.client)
    .await
    .unwrap();
    dash.wait_stats("bw-orders", "the other topic's job runs", |s| {
        s.completed == 1
    })
    .await;
    let reports = dash.stats("bw-reports").await;
    assert_eq!(pending(&reports), 1, "{reports:?}");
    assert_eq!((reports.completed, reports.processing), (1, 0));
    assert!(reports.paused);

    click_text(&dash.browser, "Resume").await;
    confirm_if_asked_until(&dash.browser, "the topic resumes", async || {
        !dash.broker().is_paused("bw-reports").await.unwrap()
    })
    .await;
    dash.wait_stats("bw-reports", "the report runs once resumed", |s| {
        s.completed == 2 && pending(s) == 0
    })
    .await;
    click_text(&dash.browser, "Pause").await;
    dash.browser.dismiss_confirm().await.unwrap();
    assert!(!dash.broker().is_paused("bw-reports").await.unwrap());
    dash.screenshot("topic-resumed", None).await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_a_job_by_a_payload_substring() {
    let Some(dash) = Dash::start(Options::new()).await else {
        return;
    };
    // Ids that no count or date on the page can contain by chance.
    let wanted = BwNote {
        note: "deliver to Quokka Lane 7".into(),
    }
    .job_id("note-quokka")
    .enqueue(&dash.client)
    .await
    .unwrap()
    .to_string();
    let others = [
        BwNote {
            note: "deliver to Wombat Street".into(),
        }
        .job_id("note-wombat")
        .enqueue(&dash.client)
        .await
        .unwrap()
        .to_string(),
        BwOrder {
            item: "a quince".into(),
        }
        .job_id("order-quince")
        .enqueue(&dash.client)
        .await
        .unwrap()
        .to_string(),
    ];

    dash.goto("/").await;
    // The navigation's Search entry is a link once the page exists.
    click_xpath(&dash.browser, "//header//a[normalize-space(.)=\"Search\"]").await;
    let input = "main input[type='search'], main input[name='q'], main input[type='text']";
    dash.browser.type_into(input, "quokka").await.unwrap();
    dash.browser
        .find(input)
        .await
        .unwrap()
        .send_keys("\u{e007}") // Enter
        .await
        .unwrap();
    wait_mentions(&dash.browser, &wanted, true).await;
    for other in &others {
        assert!(
            !main_mentions(&dash.browser, other).await,
            "{other} does not match"
        );
    }
    dash.screenshot("search", None).await;
}
