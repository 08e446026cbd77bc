//! A headless Chromium driven over WebDriver, for tests of web pages
//! (feature `browser`).
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port and opens
//! a session in headless Chromium (a 1280x900 window; the page's viewport,
//! and so a screenshot, is 1280 wide and somewhat less high). When either program is
//! missing it returns `Ok(None)` and prints why, so the test can skip; when
//! the environment variable `CI` is `true` or `1`, a missing program panics
//! instead, so CI cannot pass by skipping.
//!
//! ```no_run
//! # async fn example() -> Result<(), String> {
//! use rmq_testkit::browser::Browser;
//!
//! let Some(browser) = Browser::start().await? else {
//!     return Ok(()); // no browser here: skipped, with the reason printed
//! };
//! browser.goto("http://127.0.0.1:8080/").await?;
//! browser.click("button.retry").await?;
//! browser.accept_confirm().await?; // the page asked window.confirm()
//! browser.wait_for_text("#status", "queued").await?;
//! browser.screenshot("target/screenshots/retry.png").await?;
//! # Ok(())
//! # }
//! ```
//!
//! Programs: `CHROMEDRIVER` names the driver (default: `chromedriver` on
//! `PATH`), `CHROME_BIN` the browser (default: `chromium` on `PATH`, else
//! `/usr/bin/chromium`).
//!
//! Dialogs: the session is opened with `unhandledPromptBehavior: ignore`.
//! A `confirm()` stays open until [`Browser::accept_confirm`] or
//! [`Browser::dismiss_confirm`]; any other command meanwhile fails with
//! "unexpected alert open" rather than silently dismissing it.
//!
//! Waiting: the `wait_*` helpers and the confirm helpers poll every 50 ms
//! for [`Browser::wait_timeout`] (default [`DEFAULT_WAIT`]). Page loads give
//! up after 30 s.
//!
//! Cleanup: dropping the [`Browser`] ends the WebDriver session, kills the
//! driver's process group (Chromium included) and removes the temporary
//! directory that holds the driver's log and Chromium's profile. A test
//! process killed by a signal takes chromedriver with it, but Chromium may
//! then linger.

/// The WebDriver client crate, so that tests need not depend on it.
pub use fantoccini;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the `wait_*` helpers wait unless told otherwise.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// Time between two looks at the page while waiting.
const POLL: Duration = Duration::from_millis(50);

/// How long chromedriver may take to answer `/status` with `ready`.
const DRIVER_START: Duration = Duration::from_secs(20);

/// Window size of every session.
const WINDOW: (u32, u32) = (1280, 900);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A headless Chromium session over a `chromedriver` of its own. Dropping
/// it ends the session and kills the driver and the browser.
#[derive(Debug)]
pub struct Browser {
    client: Client,
    driver: Child,
    port: u16,
    session: Option<String>,
    dir: PathBuf,
    wait: Duration,
}

impl Browser {
    /// Starts chromedriver and opens a headless Chromium session.
    ///
    /// `Ok(None)` when chromedriver or Chromium is not installed (the
    /// reason is printed); `Err` when they are installed but do not come up.
    ///
    /// # Panics
    /// When a program is missing and `CI` is `true` or `1`.
    pub async fn start() -> Result<Option<Browser>, String> {
        let (driver, chrome) = match programs() {
            Ok(found) => found,
            Err(reason) if in_ci() => panic!(
                "{reason}. CI must run the browser tests: install chromium and \
                 chromium-driver (apt-get install -y chromium chromium-driver), \
                 or point CHROME_BIN and CHROMEDRIVER at them"
            ),
            Err(reason) => {
                // Straight to stderr: the test harness captures `eprintln!`
                // of passing tests, and a skip should be seen.
                let _ = writeln!(std::io::stderr(), "skipping a browser test: {reason}");
                return Ok(None);
            }
        };
        let dir = std::env::temp_dir().join(format!(
            "rmq-testkit-browser-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut last_error = String::new();
        // A free port can be taken between the probe and chromedriver's
        // bind: try a few.
        for _ in 0..5 {
            let port = crate::free_port();
            match spawn_driver(&driver, port, &dir).await {
                Ok(child) => return connect(child, port, dir, &chrome).await.map(Some),
                Err(e) => last_error = e,
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(format!("chromedriver did not start: {last_error}"))
    }

    /// The WebDriver client, for anything the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// How long the `wait_*` and confirm helpers wait.
    pub fn wait_timeout(&self) -> Duration {
        self.wait
    }

    /// Sets how long the `wait_*` and confirm helpers wait.
    pub fn set_wait_timeout(&mut self, timeout: Duration) {
        self.wait = timeout;
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.client
            .goto(url)
            .await
            .map_err(|e| format!("goto {url}: {e}"))
    }

    /// The first element matching the CSS selector `css`, now.
    pub async fn find(&self, css: &str) -> Result<Element, String> {
        self.client
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("find {css:?}: {e}"))
    }

    /// Every element matching `css`, now (maybe none).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, String> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_err(|e| format!("find_all {css:?}: {e}"))
    }

    /// Clicks the first element matching `css`, waiting for it to exist.
    pub async fn click(&self, css: &str) -> Result<(), String> {
        let element = self.wait_for(css).await?;
        element
            .click()
            .await
            .map_err(|e| format!("click {css:?}: {e}"))
    }

    /// Replaces the value of the input matching `css` with `text`, typed
    /// key by key (so input events fire), waiting for the input to exist.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), String> {
        let element = self.wait_for(css).await?;
        element
            .clear()
            .await
            .map_err(|e| format!("clear {css:?}: {e}"))?;
        element
            .send_keys(text)
            .await
            .map_err(|e| format!("type into {css:?}: {e}"))
    }

    /// The rendered text (`innerText`) of the first element matching `css`.
    pub async fn text(&self, css: &str) -> Result<String, String> {
        self.find(css)
            .await?
            .text()
            .await
            .map_err(|e| format!("text of {css:?}: {e}"))
    }

    /// Waits until an element matches `css`, and returns it.
    pub async fn wait_for(&self, css: &str) -> Result<Element, String> {
        let deadline = Instant::now() + self.wait;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(element) => return Ok(element),
                Err(e) if !e.is_no_such_element() => return Err(format!("find {css:?}: {e}")),
                Err(_) if Instant::now() > deadline => {
                    return Err(format!("no element matches {css:?} after {:?}", self.wait));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Waits until the text of the first element matching `css` contains
    /// `text` (use `"body"` for anywhere on the page).
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Result<(), String> {
        let last = self
            .wait_until(css, |now| now.is_some_and(|now| now.contains(text)))
            .await?;
        match last {
            None => Ok(()),
            Some(last) => Err(format!(
                "{text:?} did not appear in {css:?} within {:?}; its text: {last}",
                self.wait
            )),
        }
    }

    /// Waits until no element matches `css` or the first one's text no
    /// longer contains `text`.
    pub async fn wait_for_text_gone(&self, css: &str, text: &str) -> Result<(), String> {
        let last = self
            .wait_until(css, |now| now.is_none_or(|now| !now.contains(text)))
            .await?;
        match last {
            None => Ok(()),
            Some(last) => Err(format!(
                "{text:?} was still in {css:?} after {:?}; its text: {last}",
                self.wait
            )),
        }
    }

    /// Polls the text of `css` (`None`: no such element) until `done` holds.
    /// `Ok(None)` when it did; `Ok(Some(what was last seen))` on time-out.
    async fn wait_until(
        &self,
        css: &str,
        done: impl Fn(Option<&str>) -> bool,
    ) -> Result<Option<String>, String> {
        let deadline = Instant::now() + self.wait;
        loop {
            let now = match self.client.find(Locator::Css(css)).await {
                Ok(element) => match element.text().await {
                    Ok(text) => Some(text),
                    // Replaced between find and read (htmx swaps): look again.
                    Err(e) if e.is_stale_element_reference() => {
                        tokio::time::sleep(POLL).await;
                        continue;
                    }
                    Err(e) => return Err(format!("text of {css:?}: {e}")),
                },
                Err(e) if e.is_no_such_element() => None,
                Err(e) => return Err(format!("find {css:?}: {e}")),
            };
            if done(now.as_deref()) {
                return Ok(None);
            }
            if Instant::now() > deadline {
                return Ok(Some(match now {
                    Some(text) => format!("{text:?}"),
                    None => "(no such element)".to_owned(),
                }));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for a `window.confirm()` (or `alert()`) dialog, accepts it
    /// (the "OK" button: `confirm` returns `true`), and returns its message.
    /// htmx's `hx-confirm` asks through `window.confirm`.
    pub async fn accept_confirm(&self) -> Result<String, String> {
        let message = self.wait_for_dialog().await?;
        self.client
            .accept_alert()
            .await
            .map_err(|e| format!("accept the dialog {message:?}: {e}"))?;
        Ok(message)
    }

    /// Waits for a `window.confirm()` dialog, cancels it (`confirm` returns
    /// `false`), and returns its message.
    pub async fn dismiss_confirm(&self) -> Result<String, String> {
        let message = self.wait_for_dialog().await?;
        self.client
            .dismiss_alert()
            .await
            .map_err(|e| format!("dismiss the dialog {message:?}: {e}"))?;
        Ok(message)
    }

    async fn wait_for_dialog(&self) -> Result<String, String> {
        let deadline = Instant::now() + self.wait;
        loop {
            match self.client.get_alert_text().await {
                Ok(message) => return Ok(message),
                Err(e) if !e.is_no_such_alert() => return Err(format!("read the dialog: {e}")),
                Err(_) if Instant::now() > deadline => {
                    return Err(format!("no dialog opened within {:?}", self.wait));
                }
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    }

    /// Saves a PNG screenshot of the window to `path`, creating its parent
    /// directories, and returns the path.
    pub async fn screenshot(&self, path: impl AsRef<Path>) -> Result<PathBuf, String> {
        let path = path.as_ref();
        let png = self
            .client
            .screenshot()
            .await
            .map_err(|e| format!("screenshot: {e}"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("create {}: {e}", parent.display()))?;
        }
        std::fs::write(path, png).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path.to_owned())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium; killing the
        // process group then catches whatever is left (Chromium outlives a
        // killed driver).
        if let Some(session) = &self.session {
            delete_session(self.port, session);
        }
        // SAFETY: the driver was spawned as the leader of its own process
        // group, so `-pid` names only the driver and its children.
        unsafe {
            libc::kill(-(self.driver.id() as libc::pid_t), libc::SIGKILL);
        }
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The chromedriver and Chromium programs, or why one is missing.
fn programs() -> Result<(PathBuf, PathBuf), String> {
    let driver = match std::env::var_os("CHROMEDRIVER") {
        Some(name) => program(Path::new(&name))
            .ok_or_else(|| format!("CHROMEDRIVER={} is not a program", name.to_string_lossy()))?,
        None => program(Path::new("chromedriver"))
            .ok_or("chromedriver is not on PATH (set CHROMEDRIVER to use another)")?,
    };
    let chrome = match std::env::var_os("CHROME_BIN") {
        Some(name) => program(Path::new(&name))
            .ok_or_else(|| format!("CHROME_BIN={} is not a program", name.to_string_lossy()))?,
        None => program(Path::new("chromium"))
            .or_else(|| program(Path::new("/usr/bin/chromium")))
            .ok_or("chromium is not on PATH (set CHROME_BIN to use another browser binary)")?,
    };
    Ok((driver, chrome))
}

/// `name` itself when it has a slash, else the first match on `PATH`; only
/// executable files count.
fn program(name: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.components().count() > 1 {
        return executable(name).then(|| name.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| executable(path))
}

/// Runs chromedriver on `port` (it binds loopback only) and waits until
/// `/status` says it is ready.
async fn spawn_driver(driver: &Path, port: u16, dir: &Path) -> Result<Child, String> {
    use std::os::unix::process::CommandExt;
    let log = dir.join("chromedriver.log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| format!("open {}: {e}", log.display()))?;
    let mut cmd = Command::new(driver);
    cmd.arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        // Chromium's profile and scratch files go under `dir`, which Drop
        // removes (chromedriver's own clean-up of them lags the session).
        .env("TMPDIR", dir)
        // Its own process group, so that Drop kills Chromium with it.
        .process_group(0);
    let mut child =
        crate::spawn_guarded(cmd).map_err(|e| format!("cannot run {}: {e}", driver.display()))?;
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + DRIVER_START;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{} --port={port} exited with {status}; log: {}",
                driver.display(),
                read_log()
            ));
        }
        if driver_ready(port).await {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "chromedriver on port {port} not ready after {DRIVER_START:?}; log: {}",
                read_log()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether chromedriver on `port` answers `/status` with `"ready":true`.
async fn driver_ready(port: u16) -> bool {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        let mut buf = [0u8; 4096];
        // chromedriver keeps the connection open: read one response only.
        while !response_complete(&response) {
            match stream.read(&mut buf).await? {
                0 => break,
                n => response.extend_from_slice(&buf[..n]),
            }
        }
        std::io::Result::Ok(response)
    };
    match tokio::time::timeout(Duration::from_secs(2), ask).await {
        Ok(Ok(response)) => String::from_utf8_lossy(&response).contains("\"ready\":true"),
        _ => false,
    }
}

/// Whether `response` holds a whole HTTP response: its head and as many
/// body bytes as its `Content-Length` says.
fn response_complete(response: &[u8]) -> bool {
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&response[..end]);
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    response.len() >= end + 4 + length
}

/// Opens the headless Chromium session on the driver at `port`.
async fn connect(
    mut driver: Child,
    port: u16,
    dir: PathBuf,
    chrome: &Path,
) -> Result<Browser, String> {
    let (width, height) = WINDOW;
    let capabilities = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chrome.to_string_lossy(),
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                format!("--window-size={width},{height}"),
            ],
        },
        "unhandledPromptBehavior": "ignore",
        "timeouts": { "pageLoad": 30_000, "script": 30_000, "implicit": 0 },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal");
    };
    let url = format!("http://127.0.0.1:{port}");
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&url)
        .await;
    let client = match client {
        Ok(client) => client,
        Err(e) => {
            // SAFETY: as in Drop, the driver leads its own process group.
            unsafe {
                libc::kill(-(driver.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = driver.wait();
            let log = std::fs::read_to_string(dir.join("chromedriver.log")).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "no session in {} (via chromedriver on port {port}): {e}; log: {log}",
                chrome.display()
            ));
        }
    };
    let session = client.session_id().await.ok().flatten();
    Ok(Browser {
        client,
        driver,
        port,
        session,
        dir,
        wait: DEFAULT_WAIT,
    })
}

/// `DELETE /session/<id>`, blocking (it runs in Drop), bounded in time.
fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    while !response_complete(&response) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
}
