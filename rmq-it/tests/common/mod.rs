//! Shared by the process-level tests: worker processes that are killed on
//! drop, and polling Redis until a condition holds or a deadline passes.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rmq::broker::TopicStats;
use rmq::{Client, Config};

pub const WORKER: &str = env!("CARGO_BIN_EXE_rmq-it-worker");

static LOGS: AtomicUsize = AtomicUsize::new(0);

/// A command for the test worker binary with a clean environment: no
/// inherited `REDIS_*` / `MQ_*` / `RUST_LOG`, `REDIS_URL` set to `url`.
pub fn command(url: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(WORKER);
    for (name, _) in std::env::vars() {
        if name.starts_with("MQ_") || name.starts_with("REDIS_") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd.env("REDIS_URL", url).env("RUST_LOG", "info");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.args(args).stdin(Stdio::null());
    cmd
}

/// A worker process, SIGKILLed on drop if still running. Its output goes
/// to a log file that is printed when the test fails (or always, with
/// `RMQ_IT_LOGS=1`).
pub struct Worker {
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Worker {
    /// Starts `rmq-it-worker run <args>` against `url`.
    pub fn run(url: &str, args: &[&str], env: &[(&str, &str)]) -> Worker {
        let log = std::env::temp_dir().join(format!(
            "rmq-it-{}-{}.log",
            std::process::id(),
            LOGS.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&log).expect("create the worker log");
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        let child = command(url, &all, env)
            .stdout(file.try_clone().expect("clone the log file"))
            .stderr(file)
            .spawn()
            .expect("start rmq-it-worker");
        Worker {
            child,
            log,
            status: None,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` (libc::SIGKILL, libc::SIGTERM, ...).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; it is not reaped yet, so
        // the pid cannot have been reused.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.poll().is_none()
    }

    fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.poll() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "worker {} did not exit within {timeout:?}",
                self.pid()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, and wait until it is gone.
    pub async fn kill9(&mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        self.exited(Duration::from_secs(5)).await
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.poll().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() || std::env::var_os("RMQ_IT_LOGS").is_some() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "---- log of worker {} (last {} lines) ----\n{}",
                self.child.id(),
                tail.len(),
                tail.join("\n")
            );
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs a CLI command of the test worker to completion (at most 30 s).
pub fn cli(url: &str, args: &[&str]) -> Output {
    cli_env(url, args, &[])
}

/// [`cli`] with further environment variables (`RUST_LOG` defaults to
/// `warn`).
pub fn cli_env(url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec![("RUST_LOG", "warn")];
    all.extend_from_slice(env);
    let child = command(url, args, &all)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rmq-it-worker");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(output) => output.expect("wait for rmq-it-worker"),
        Err(_) => {
            // SAFETY: the child is not reaped while its waiter still waits.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!(
                "`rmq-it-worker {}` did not finish within 30 s",
                args.join(" ")
            );
        }
    }
}

/// Reads the records and queue state of one test Redis. Every call opens a
/// fresh connection, so it works across server restarts and CLIENT KILL.
pub struct Probe {
    url: String,
}

impl Probe {
    pub fn new(url: impl Into<String>) -> Probe {
        Probe { url: url.into() }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A connection that waits as long as a loaded machine needs (the
    /// client's default gives up after half a second).
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let config =
            redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
        redis::Client::open(self.url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("connect to the test redis")
    }

    /// The length of list `key`.
    pub async fn len(&self, key: &str) -> usize {
        redis::cmd("LLEN")
            .arg(key)
            .query_async(&mut self.conn().await)
            .await
            .expect("LLEN")
    }

    /// A client of the queues.
    pub async fn client(&self) -> Client {
        let mut config = Config::default();
        config.redis_url = self.url.clone();
        config.connection_pool_size = 2;
        Client::connect(config).await.expect("connect a client")
    }

    /// The whole list `key`.
    pub async fn list(&self, key: &str) -> Vec<String> {
        redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn().await)
            .await
            .expect("LRANGE")
    }

    /// How often each seq of `topic` completed, from [`rmq_it::RAN`].
    pub async fn ran(&self, topic: &str) -> HashMap<u64, usize> {
        count(&self.list(rmq_it::RAN).await, topic)
    }

    pub async fn stats(&self, topic: &str) -> TopicStats {
        let client = self.client().await;
        client
            .broker()
            .expect("redis client")
            .stats(topic)
            .await
            .expect("stats")
    }
}

/// How often each `<topic>:<seq>` of `topic` appears in `entries`.
pub fn count(entries: &[String], topic: &str) -> HashMap<u64, usize> {
    let prefix = format!("{topic}:");
    let mut counts = HashMap::new();
    for entry in entries {
        if let Some(rest) = entry.strip_prefix(&prefix) {
            let seq = rest.split(':').next().unwrap_or(rest);
            *counts.entry(seq.parse().expect("seq")).or_insert(0) += 1;
        }
    }
    counts
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after
/// `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a topic has nothing pending, delayed or leased.
pub async fn drained(probe: &Probe, topic: &str, timeout: Duration) -> TopicStats {
    eventually(&format!("`{topic}` to drain"), timeout, || async {
        let s = probe.stats(topic).await;
        (s.pending.iter().sum::<u64>() == 0 && s.delayed == 0 && s.processing == 0).then_some(s)
    })
    .await
}

/// An HTTP response read by [`http_get`].
pub struct Response {
    pub status: u16,
    /// The header lines, lowercased names.
    pub head: String,
    pub body: String,
}

/// `GET path` on 127.0.0.1:`port` with extra header lines (`name: value`);
/// `None` when nothing answers.
pub fn http_get(port: u16, path: &str, headers: &[&str]) -> Option<Response> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Response {
        status,
        head: head.to_lowercase(),
        body: body.to_owned(),
    })
}
