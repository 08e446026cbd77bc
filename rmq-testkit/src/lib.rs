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
//!
//! A TLS server takes certificates made at run time by [`pki::Pki`]:
//!
//! ```no_run
//! use rmq_testkit::pki::Pki;
//! use rmq_testkit::{AuthClients, Options, RedisServer, Tls};
//!
//! let pki = Pki::new();
//! let server_cert = pki.server("redis", &["localhost", "127.0.0.1"]);
//! let server = RedisServer::with(Options {
//!     tls: Some(Tls::new(&pki, &server_cert, AuthClients::No)),
//!     ..Options::default()
//! });
//! let url = server.tls_url(); // rediss://127.0.0.1:<tls port>
//! ```
//!
//! With the feature `browser`, [`browser::Browser`] drives a headless
//! Chromium over WebDriver, for tests of web pages.

#[cfg(feature = "browser")]
pub mod browser;
mod cluster;
pub mod pki;
mod resp;
mod sentinel;

pub use cluster::{key_slot, Cluster, NodeInfo, SLOTS};
pub use sentinel::{SentinelSet, MASTER_NAME};

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
    /// Also listen for TLS on a second port ([`RedisServer::tls_url`]).
    /// The plain port stays open on loopback, for the readiness check and
    /// for test setup that should not depend on the TLS code under test.
    pub tls: Option<Tls>,
}

/// The TLS settings of a test server.
#[derive(Clone, Debug)]
pub struct Tls {
    /// PEM certificate the server presents (`--tls-cert-file`).
    pub cert_file: PathBuf,
    /// Its private key (`--tls-key-file`).
    pub key_file: PathBuf,
    /// CA that client certificates must be signed by (`--tls-ca-cert-file`).
    pub ca_file: PathBuf,
    /// Whether clients must present a certificate (`--tls-auth-clients`).
    pub auth_clients: AuthClients,
}

impl Tls {
    /// A server presenting `server`, trusting client certificates of `pki`'s CA.
    pub fn new(pki: &pki::Pki, server: &pki::CertFiles, auth_clients: AuthClients) -> Tls {
        Tls {
            cert_file: server.cert.clone(),
            key_file: server.key.clone(),
            ca_file: pki.ca_file().to_owned(),
            auth_clients,
        }
    }
}

/// `--tls-auth-clients`: whether a TLS client must present a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthClients {
    /// Never asked for.
    No,
    /// Checked when presented.
    Optional,
    /// Required (mutual TLS).
    Yes,
}

impl AuthClients {
    fn arg(self) -> &'static str {
        match self {
            AuthClients::No => "no",
            AuthClients::Optional => "optional",
            AuthClients::Yes => "yes",
        }
    }
}

/// A running `redis-server`, killed (SIGKILL) and its directory removed on
/// drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    tls_port: Option<u16>,
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
                tls_port: options.tls.as_ref().map(|_| free_port()),
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
        if let (Some(tls), Some(port)) = (&self.options.tls, self.tls_port) {
            cmd.arg("--tls-port")
                .arg(port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.cert_file)
                .arg("--tls-key-file")
                .arg(&tls.key_file)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca_file)
                .args(["--tls-auth-clients", tls.auth_clients.arg()]);
        }
        cmd.args(&self.options.args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = spawn_guarded(cmd)
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

    /// The TLS port, for a server started with [`Options::tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// `rediss://127.0.0.1:<tls port>` (no password).
    ///
    /// # Panics
    /// When the server was started without [`Options::tls`].
    pub fn tls_url(&self) -> String {
        let port = self
            .tls_port
            .expect("tls_url: the server was started without Options::tls");
        format!("rediss://127.0.0.1:{port}")
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

/// Spawns `cmd` so that the child is killed (SIGKILL) when this process
/// ends in any way, even by a signal or a panic that skips `Drop`: the
/// child asks the kernel for a signal when its parent thread exits, and
/// every child is started from one thread that lives as long as the
/// process.
pub(crate) fn spawn_guarded(cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    use std::sync::{Mutex, OnceLock};

    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("rmq-testkit-spawner".to_owned())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // SAFETY: `prctl` is async-signal-safe and touches no
                    // memory of the parent.
                    unsafe {
                        cmd.pre_exec(|| {
                            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

/// Whether a server answers on `port` (a password prompt counts).
pub(crate) fn ping(port: u16) -> bool {
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
