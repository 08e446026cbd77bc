//! What a dashboard shows about the Redis server(s): version, memory and
//! the eviction policy (see `guard` for why an evicting policy matters).

use super::guard::eviction_policy;
use super::Broker;
use crate::Error;

/// One Redis server as `INFO server memory` describes it, read by
/// [`Broker::server_info`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ServerInfo {
    /// The server: the URL (password masked), or the node's address in a
    /// cluster.
    pub node: String,
    /// `redis_version`.
    pub version: String,
    /// `used_memory`, bytes.
    pub used_memory: u64,
    /// `maxmemory`, bytes; 0: no limit.
    pub maxmemory: u64,
    /// `maxmemory_policy`, e.g. `noeviction`.
    pub eviction_policy: String,
}

impl ServerInfo {
    /// Parses `INFO` output; fields it lacks stay empty or 0.
    pub fn parse(node: &str, info: &str) -> ServerInfo {
        let field = |name: &str| {
            info.lines()
                .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let number = |name: &str| field(name).and_then(|v| v.parse().ok()).unwrap_or(0);
        ServerInfo {
            node: node.to_owned(),
            version: field("redis_version").unwrap_or_default().to_owned(),
            used_memory: number("used_memory"),
            maxmemory: number("maxmemory"),
            eviction_policy: eviction_policy(info).unwrap_or_default().to_owned(),
        }
    }

    /// Whether the policy may evict any key (`allkeys-*`), queued jobs
    /// included. `volatile-*` policies evict only keys with a TTL, which in
    /// rmq are heartbeats and worker commands, never jobs.
    pub fn evicts_jobs(&self) -> bool {
        self.eviction_policy.starts_with("allkeys-")
    }
}

impl Broker {
    /// `INFO server memory` of the server, or of every primary of a
    /// cluster (sorted by node).
    pub async fn server_info(&self) -> Result<Vec<ServerInfo>, Error> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("server").arg("memory");
        if self.inner.deployment.cluster().is_some() {
            let mut nodes: Vec<(String, String)> = self.cmd("reading server info", &cmd).await?;
            nodes.sort();
            return Ok(nodes
                .iter()
                .map(|(node, info)| ServerInfo::parse(node, info))
                .collect());
        }
        let info: String = self.cmd("reading server info", &cmd).await?;
        Ok(vec![ServerInfo::parse(&self.inner.url, &info)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_info() {
        let info = "# Server\r\nredis_version:7.2.4\r\n# Memory\r\nused_memory:1024\r\nused_memory_human:1K\r\nmaxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\n";
        let parsed = ServerInfo::parse("redis://h", info);
        assert_eq!(parsed.version, "7.2.4");
        assert_eq!(parsed.used_memory, 1024);
        assert_eq!(parsed.maxmemory, 0);
        assert_eq!(parsed.eviction_policy, "allkeys-lru");
        assert!(parsed.evicts_jobs());
        assert!(!ServerInfo::parse("n", "maxmemory_policy:volatile-lru").evicts_jobs());
    }
}
