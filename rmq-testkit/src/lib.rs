//! Test support for rmq: a throwaway `redis-server` on a free loopback port.
//!
//! ```no_run
//! let server = rmq_testkit::RedisServer::start();
//! let url = server.url(); // redis://127.0.0.1:<port>
//! // ... connect, test ...
//! // the server is killed when `server` is dropped
//! ```
//!
//! Servers never use port 6379 and each has its own directory, so tests run
//! in parallel (cargo test threads or nextest processes).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How a test server runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Persist with an append-only file (`appendfsync always`), so data
    /// survives [`RedisServer::kill`] + [`RedisServer::restart`].
    pub appendonly: bool,
    /// Require this password (`--requirepass`).
    pub password: Option<String>,
    /// Further `redis-server` arguments, e.g. `["--maxmemory", "2mb"]`.
    pub args: Vec<String>,
}

/// A running `redis-server`, killed (SIGKILL) and its directory removed on
/// drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    options: Options,
}

/// A loopback port that was free a moment ago (nothing listens on it).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local address").port();
    assert_ne!(port, 6379);
    port
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl RedisServer {
    /// Starts a server without persistence.
    pub fn start() -> RedisServer {
        RedisServer::with(Options::default())
    }

    /// Starts a server with `options`.
    ///
    /// # Panics
    /// When `redis-server` is not installed or does not come up.
    pub fn with(options: Options) -> RedisServer {
        RedisServer::try_with(options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a server with `options`, or says why it could not.
    pub fn try_with(options: Options) -> Result<RedisServer, String> {
        let dir = std::env::temp_dir().join(format!(
            "rmq-testkit-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the server directory");
        let mut last_error = String::new();
        // A free port can be taken by another test between the probe and
        // the server's bind: try a few.
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port(),
                dir: dir.clone(),
                options: options.clone(),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) => last_error = e,
            }
        }
        Err(format!("redis-server did not start: {last_error}"))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--logfile", "redis.log"]);
        if self.options.appendonly {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        if let Some(password) = &self.options.password {
            cmd.args(["--requirepass", password]);
        }
        cmd.args(&self.options.args);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server (is it installed?): {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "redis-server on port {} exited with {status}; log: {}",
                    self.port,
                    std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
                ));
            }
            if ping(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("redis-server on port {} did not answer", self.port));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// `redis://127.0.0.1:<port>` (no password).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server if it runs, then starts it again on the same port
    /// and directory.
    ///
    /// # Panics
    /// When it does not come back.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(e) if Instant::now() > deadline => panic!("restart failed: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether a server answers on `port` (a password prompt counts).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) if n > 0 => buf.starts_with(b"+PONG") || buf.starts_with(b"-NOAUTH"),
        _ => false,
    }
}
