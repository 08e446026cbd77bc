//! A Sentinel deployment on loopback: one master, one replica and three
//! sentinels (quorum 2), for failover tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::resp::{command, Reply};
use crate::{free_port, ping, spawn_guarded, Options, RedisServer, COUNTER};

/// The master name the sentinels monitor.
pub const MASTER_NAME: &str = "mymaster";

/// One master, one replica and three sentinels (`redis-server --sentinel`,
/// quorum 2, `down-after-milliseconds 1000`), all on free loopback ports.
/// Every process is killed when the set is dropped, and, should the test
/// process die without dropping it, when the process ends.
///
/// Starting takes a few seconds (the sentinels must find the replica and
/// each other): start one set per test binary and run its cases in turn.
///
/// ```no_run
/// let mut set = rmq_testkit::SentinelSet::start();
/// let url = set.url(); // redis+sentinel://127.0.0.1:<p1>,...,127.0.0.1:<p3>/mymaster
/// let old = set.master_port();
/// set.failover(); // SENTINEL FAILOVER mymaster
/// let new = set.wait_for_new_master(old, std::time::Duration::from_secs(20));
/// assert_ne!(old, new);
/// ```
#[derive(Debug)]
pub struct SentinelSet {
    nodes: Vec<RedisServer>,
    sentinels: Vec<SentinelProcess>,
}

#[derive(Debug)]
struct SentinelProcess {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn text_of(reply: &Reply) -> String {
    reply.text().unwrap_or_default().to_owned()
}

/// The value of `field` in `INFO` output.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{field}:")))
        .map(str::to_owned)
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "SentinelSet: {what} did not happen within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl SentinelSet {
    /// Starts the master, its replica and three sentinels, and waits until
    /// the replica is in sync and every sentinel knows the replica and the
    /// two other sentinels.
    ///
    /// # Panics
    /// When a process does not start or the set does not settle in 30 s.
    pub fn start() -> SentinelSet {
        let master = RedisServer::start();
        let replica = RedisServer::with(Options {
            args: vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                master.port().to_string(),
            ],
            ..Options::default()
        });
        let mut set = SentinelSet {
            nodes: vec![master, replica],
            sentinels: Vec::new(),
        };
        set.wait_replicated(Duration::from_secs(20));
        let master_port = set.nodes[0].port();
        for _ in 0..3 {
            set.sentinels.push(start_sentinel(master_port));
        }
        wait_until(
            "the sentinels finding the replica and each other",
            Duration::from_secs(30),
            || {
                set.sentinels.iter().all(|s| {
                    let replicas = command(s.port, &["SENTINEL", "REPLICAS", MASTER_NAME]);
                    let peers = command(s.port, &["SENTINEL", "SENTINELS", MASTER_NAME]);
                    matches!((replicas, peers), (Ok(r), Ok(p)) if !r.items().is_empty() && p.items().len() == 2)
                })
            },
        );
        set
    }

    /// `redis+sentinel://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>/mymaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The ports of the two data nodes (the first one started as master).
    pub fn node_ports(&self) -> Vec<u16> {
        self.nodes.iter().map(RedisServer::port).collect()
    }

    /// The master's port as the first sentinel that answers names it.
    ///
    /// # Panics
    /// When no sentinel answers.
    pub fn master_port(&self) -> u16 {
        self.sentinels
            .iter()
            .find_map(|s| self.master_by(s.port))
            .expect("no sentinel names a master")
    }

    fn master_by(&self, sentinel: u16) -> Option<u16> {
        let reply = command(
            sentinel,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
        )
        .ok()?;
        text_of(reply.items().get(1)?).parse().ok()
    }

    /// `redis://127.0.0.1:<port>` of a data node.
    pub fn node_url(&self, port: u16) -> String {
        format!("redis://127.0.0.1:{port}")
    }

    /// Whether the node on `port` says it is a master (`ROLE`).
    pub fn is_master(&self, port: u16) -> bool {
        command(port, &["ROLE"])
            .ok()
            .and_then(|r| r.items().first().map(text_of))
            .is_some_and(|role| role == "master")
    }

    /// Kills the current master (SIGKILL) and returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("the master is one of the set's nodes");
        node.kill();
        port
    }

    /// Starts a killed node again on its port (the sentinels then make it a
    /// replica of the current master).
    pub fn restart_node(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of the set");
        // Once a replica, always started as one (of the current master).
        node.restart();
    }

    /// `SENTINEL FAILOVER mymaster` on the first sentinel that accepts it
    /// (one that is not ready says so and another one is asked, for up to
    /// 10 s).
    ///
    /// # Panics
    /// When no sentinel accepts.
    pub fn failover(&self) {
        let mut last = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            for s in &self.sentinels {
                match command(s.port, &["SENTINEL", "FAILOVER", MASTER_NAME]) {
                    Ok(Reply::Status(_)) => return,
                    other => last = format!("{other:?}"),
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("SentinelSet: no sentinel started a failover: {last}");
    }

    /// Waits until a majority of the sentinels name a master other than
    /// `old` and that node says it is a master; returns its port.
    ///
    /// # Panics
    /// When that does not happen within `timeout`.
    pub fn wait_for_new_master(&self, old: u16, timeout: Duration) -> u16 {
        let mut new = 0;
        wait_until("the election of a new master", timeout, || {
            let named: Vec<u16> = self
                .sentinels
                .iter()
                .filter_map(|s| self.master_by(s.port))
                .filter(|p| *p != old)
                .collect();
            match named.first() {
                Some(&port) if named.len() >= 2 && self.is_master(port) => {
                    new = port;
                    true
                }
                _ => false,
            }
        });
        new
    }

    /// Waits until the current master has a replica in sync (its link up
    /// and its offset caught up).
    ///
    /// # Panics
    /// When that does not happen within `timeout`.
    pub fn wait_replicated(&self, timeout: Duration) {
        wait_until("a replica in sync with the master", timeout, || {
            let master = if self.sentinels.is_empty() {
                self.nodes[0].port()
            } else {
                self.master_port()
            };
            let Ok(info) = command(master, &["INFO", "replication"]) else {
                return false;
            };
            let info = text_of(&info);
            let offset = info_field(&info, "master_repl_offset");
            // slave0:ip=127.0.0.1,port=...,state=online,offset=...,lag=0
            info_field(&info, "slave0").is_some_and(|slave| {
                slave.contains("state=online")
                    && offset.is_some_and(|o| slave.contains(&format!("offset={o},")))
            })
        });
    }
}

fn start_sentinel(master_port: u16) -> SentinelProcess {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "rmq-testkit-sentinel-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create the sentinel directory");
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndaemonize no\ndir {dir}\nlogfile sentinel.log\n\
                 sentinel resolve-hostnames no\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 3000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                dir = dir.display()
            ),
        )
        .expect("write sentinel.conf");
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut process = SentinelProcess {
            child: Some(spawn_guarded(cmd).expect("run redis-server --sentinel")),
            port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(status))) = process.child.as_mut().map(Child::try_wait) {
                last = format!(
                    "exited with {status}: {}",
                    std::fs::read_to_string(process.dir.join("sentinel.log")).unwrap_or_default()
                );
                break;
            }
            if ping(port) {
                return process;
            }
            if Instant::now() > deadline {
                last = "did not answer".to_owned();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("a sentinel did not start: {last}");
}
