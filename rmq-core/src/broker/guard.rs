//! What rmq refuses about a server before it uses it: a memory policy that
//! evicts keys deletes queued jobs without a trace.

use crate::Error;

/// The `maxmemory_policy` line of `INFO memory` output.
pub(super) fn eviction_policy(info: &str) -> Option<&str> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix("maxmemory_policy:"))
        .map(str::trim)
}

/// Refuses a policy that may evict rmq's keys (`allkeys-*`) unless
/// `allow_eviction` is set, in which case it warns. The `volatile-*`
/// policies evict only keys with a TTL: the only rmq keys with one are
/// worker heartbeats and their control commands (`keys`), never a job.
/// Evicting a heartbeat only hides a live worker from `worker ps` (and
/// `worker health`) until its next beat writes it again, and an evicted
/// `quiet` / `stop` command is lost; jobs are safe.
pub(super) fn check_eviction(info: &str, allow_eviction: bool, url: &str) -> Result<(), Error> {
    let Some(policy) = eviction_policy(info) else {
        return Ok(());
    };
    if !policy.starts_with("allkeys-") {
        return Ok(());
    }
    if allow_eviction {
        tracing::warn!(
            policy,
            url,
            "Redis may evict keys under memory pressure (maxmemory-policy {policy}): queued jobs can vanish without a trace; set `maxmemory-policy noeviction`"
        );
        return Ok(());
    }
    Err(Error::EvictingRedis {
        url: url.to_owned(),
        policy: policy.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(policy: &str) -> String {
        format!("# Memory\r\nused_memory:100\r\nmaxmemory_policy:{policy}\r\n")
    }

    #[test]
    fn refuses_allkeys_policies_unless_allowed() {
        for policy in ["allkeys-lru", "allkeys-lfu", "allkeys-random"] {
            let err = check_eviction(&info(policy), false, "redis://h")
                .unwrap_err()
                .to_string();
            assert!(err.contains(policy), "{err}");
            assert!(err.contains("maxmemory-policy noeviction"), "{err}");
            check_eviction(&info(policy), true, "redis://h").unwrap();
        }
        for policy in ["noeviction", "volatile-lru", "volatile-ttl"] {
            check_eviction(&info(policy), false, "redis://h").unwrap();
        }
        check_eviction("# Memory\r\n", false, "redis://h").unwrap();
    }
}
