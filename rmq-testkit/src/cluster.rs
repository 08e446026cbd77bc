//! A Redis Cluster on loopback: three primaries and three replicas, for
//! the cluster tests.

use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::resp::{command, Reply};
use crate::{Options, RedisServer};

/// Slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// Three primaries and three replicas (`--cluster-enabled yes`,
/// `cluster-node-timeout` 1000 ms, full coverage not required, so a shard
/// failing over leaves the others serving), formed with
/// `redis-cli --cluster create --cluster-replicas 1` on free loopback ports.
/// Every process is killed when the cluster is dropped and, should that
/// never happen (a `static`), when the test process ends.
///
/// Forming takes a few seconds: share one per test binary with
/// [`Cluster::shared`].
///
/// ```no_run
/// let cluster = rmq_testkit::Cluster::shared();
/// let url = cluster.url(); // redis+cluster://127.0.0.1:<p1>,.../
/// let owner = cluster.primary_of_key("{rmq:emails}:normal");
/// ```
#[derive(Debug)]
pub struct Cluster {
    nodes: Mutex<Vec<RedisServer>>,
    seeds: Vec<u16>,
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub id: String,
    /// Client port.
    pub port: u16,
    /// A primary (`master` flag) that is not failed.
    pub primary: bool,
    /// Flagged `fail` or `fail?`.
    pub failed: bool,
    /// The primary's id, for a replica.
    pub primary_id: Option<String>,
    /// Slot ranges served (inclusive), for a primary.
    pub slots: Vec<(u16, u16)>,
}

fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "Cluster: {what} did not happen within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ok(reply: Result<Reply, String>, what: &str) -> Reply {
    match reply {
        Ok(Reply::Error(e)) => panic!("Cluster: {what}: {e}"),
        Ok(reply) => reply,
        Err(e) => panic!("Cluster: {what}: {e}"),
    }
}

/// The CRC16 slot of `key` (its hash tag when it has one).
pub fn key_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let hashed = match bytes.iter().position(|&b| b == b'{') {
        Some(open) => match bytes[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &bytes[open + 1..open + 1 + len],
            _ => bytes,
        },
        None => bytes,
    };
    crc16(hashed) % SLOTS
}

/// CRC16/XMODEM, as Redis Cluster uses.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

impl Cluster {
    /// Starts six nodes and forms the cluster; waits until every node
    /// reports `cluster_state:ok` and knows all six.
    ///
    /// # Panics
    /// When a node does not start or the cluster does not form in 30 s.
    pub fn start() -> Cluster {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|_| {
                RedisServer::with(Options {
                    args: [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "1000",
                        "--cluster-require-full-coverage",
                        "no",
                        "--cluster-replica-validity-factor",
                        "0",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                    ..Options::default()
                })
            })
            .collect();
        let ports: Vec<u16> = nodes.iter().map(RedisServer::port).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null());
        let out = create.output().expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Cluster {
            seeds: ports[..3].to_vec(),
            nodes: Mutex::new(nodes),
        };
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// One cluster per test binary, started at the first call.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        extern "C" fn stop_shared() {
            if let Some(cluster) = SHARED.get() {
                // Drops the nodes: kills them and removes their directories.
                cluster.nodes().clear();
            }
        }
        SHARED.get_or_init(|| {
            let cluster = Cluster::start();
            // SAFETY: registers a plain function without captures.
            unsafe {
                libc::atexit(stop_shared);
            }
            cluster
        })
    }

    fn nodes(&self) -> MutexGuard<'_, Vec<RedisServer>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>/`: the
    /// first three nodes as seeds.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .seeds
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}/", hosts.join(","))
    }

    /// The ports of every node started (running or not).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes().iter().map(RedisServer::port).collect()
    }

    /// The ports of the nodes that answer.
    pub fn live_ports(&self) -> Vec<u16> {
        self.ports()
            .into_iter()
            .filter(|&p| crate::ping(p))
            .collect()
    }

    /// The cluster as the first live node sees it (`CLUSTER NODES`).
    pub fn topology(&self) -> Vec<NodeInfo> {
        for port in self.live_ports() {
            if let Ok(Reply::Bulk(Some(text))) = command(port, &["CLUSTER", "NODES"]) {
                return parse_nodes(&text);
            }
        }
        panic!("Cluster: no node answers CLUSTER NODES");
    }

    /// The port of the primary serving `slot`, as the live nodes agree.
    pub fn primary_of_slot(&self, slot: u16) -> Option<u16> {
        self.topology()
            .into_iter()
            .find(|n| n.primary && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .map(|n| n.port)
    }

    /// The port of the primary serving `key`'s slot.
    ///
    /// # Panics
    /// When no primary serves it.
    pub fn primary_of_key(&self, key: &str) -> u16 {
        let slot = key_slot(key);
        self.primary_of_slot(slot)
            .unwrap_or_else(|| panic!("Cluster: no primary serves slot {slot}"))
    }

    /// The ports of the primaries, ordered by their first slot.
    pub fn primaries(&self) -> Vec<u16> {
        let mut primaries: Vec<(u16, u16)> = self
            .topology()
            .into_iter()
            .filter(|n| n.primary && !n.slots.is_empty())
            .map(|n| (n.slots[0].0, n.port))
            .collect();
        primaries.sort();
        primaries.into_iter().map(|(_, port)| port).collect()
    }

    /// Kills the node on `port` at once (SIGKILL).
    pub fn kill(&self, port: u16) {
        if let Some(node) = self.nodes().iter_mut().find(|n| n.port() == port) {
            node.kill();
        }
    }

    /// Starts the node on `port` again (it rejoins from its `nodes.conf`, as
    /// a replica when it was failed over).
    pub fn restart(&self, port: u16) {
        if let Some(node) = self.nodes().iter_mut().find(|n| n.port() == port) {
            node.restart();
        }
    }

    /// Restarts every killed node and waits until the cluster is healthy
    /// again.
    pub fn heal(&self, timeout: Duration) {
        for port in self.ports() {
            if !crate::ping(port) {
                self.restart(port);
            }
        }
        self.wait_healthy(timeout);
    }

    /// Waits until a primary other than `old` serves `slot`; returns its
    /// port.
    ///
    /// # Panics
    /// After `timeout`.
    pub fn wait_for_new_primary(&self, slot: u16, old: u16, timeout: Duration) -> u16 {
        let mut new = None;
        wait_until("a replica's promotion", timeout, || {
            new = self
                .live_ports()
                .into_iter()
                .filter_map(|p| match command(p, &["CLUSTER", "NODES"]) {
                    Ok(Reply::Bulk(Some(text))) => Some(parse_nodes(&text)),
                    _ => None,
                })
                .flatten()
                .find(|n| {
                    n.primary
                        && n.port != old
                        && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot))
                })
                .map(|n| n.port)
                .filter(|&p| role_is_master(p));
            new.is_some()
        });
        new.expect("checked above")
    }

    /// Waits until every live node reports `cluster_state:ok`, knows every
    /// node, and no live node is flagged failed.
    ///
    /// # Panics
    /// After `timeout`.
    pub fn wait_healthy(&self, timeout: Duration) {
        let total = self.ports().len();
        wait_until("the cluster becoming healthy", timeout, || {
            let live = self.live_ports();
            live.len() == total
                && live.iter().all(|&p| {
                    let info = match command(p, &["CLUSTER", "INFO"]) {
                        Ok(Reply::Bulk(Some(info))) => info,
                        _ => return false,
                    };
                    let nodes = match command(p, &["CLUSTER", "NODES"]) {
                        Ok(Reply::Bulk(Some(text))) => parse_nodes(&text),
                        _ => return false,
                    };
                    info.contains("cluster_state:ok")
                        && info.contains("cluster_slots_assigned:16384")
                        && nodes.len() == total
                        && nodes.iter().all(|n| !n.failed)
                })
        });
    }

    /// Moves `slot` (and its keys) to the primary on `to`: `CLUSTER SETSLOT
    /// IMPORTING` / `MIGRATING`, `MIGRATE` of every key, then `SETSLOT NODE`
    /// on every primary, as `redis-cli --cluster reshard` does.
    ///
    /// # Panics
    /// When a step fails.
    pub fn move_slot(&self, slot: u16, to: u16) {
        let nodes = self.topology();
        let from = nodes
            .iter()
            .find(|n| n.primary && n.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .expect("a primary serves the slot")
            .clone();
        let target = nodes
            .iter()
            .find(|n| n.port == to)
            .expect("the target is a node")
            .clone();
        if from.port == to {
            return;
        }
        let s = slot.to_string();
        ok(
            command(
                to,
                &["CLUSTER", "SETSLOT", &s, "IMPORTING", from.id.as_str()],
            ),
            "SETSLOT IMPORTING",
        );
        ok(
            command(
                from.port,
                &["CLUSTER", "SETSLOT", &s, "MIGRATING", target.id.as_str()],
            ),
            "SETSLOT MIGRATING",
        );
        loop {
            let keys = ok(
                command(from.port, &["CLUSTER", "GETKEYSINSLOT", &s, "100"]),
                "GETKEYSINSLOT",
            );
            let keys: Vec<String> = keys
                .items()
                .iter()
                .filter_map(|k| k.text().map(str::to_owned))
                .collect();
            if keys.is_empty() {
                break;
            }
            let port = to.to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys.iter().map(String::as_str));
            ok(command(from.port, &args), "MIGRATE");
        }
        for node in nodes.iter().filter(|n| n.primary) {
            ok(
                command(
                    node.port,
                    &["CLUSTER", "SETSLOT", &s, "NODE", target.id.as_str()],
                ),
                "SETSLOT NODE",
            );
        }
    }
}

fn role_is_master(port: u16) -> bool {
    match command(port, &["ROLE"]) {
        Ok(reply) => reply.items().first().and_then(Reply::text) == Some("master"),
        Err(_) => false,
    }
}

fn parse_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let addr = fields[1].split('@').next()?;
            let port = addr.rsplit(':').next()?.parse().ok()?;
            let flags: Vec<&str> = fields[2].split(',').collect();
            let failed = flags.iter().any(|f| *f == "fail" || *f == "fail?");
            let slots = fields[8..]
                .iter()
                .filter(|s| !s.starts_with('['))
                .filter_map(|s| match s.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => {
                        let one = s.parse().ok()?;
                        Some((one, one))
                    }
                })
                .collect();
            Some(NodeInfo {
                id: fields[0].to_owned(),
                port,
                primary: flags.contains(&"master") && !failed,
                failed,
                primary_id: (fields[3] != "-").then(|| fields[3].to_owned()),
                slots,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        assert_eq!(key_slot("123456789"), 0x31c3 % SLOTS);
        assert_eq!(key_slot("{}x"), key_slot("{}x"));
    }
}
