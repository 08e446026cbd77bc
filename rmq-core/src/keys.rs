//! The Redis key layout, in one place.
//!
//! Every key of topic `T` under prefix `P` shares the hash tag `{P:T}`
//! (`{T}` when the prefix is empty), so one topic always lives on one Redis
//! Cluster slot and every script touches the keys of exactly one topic:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P:T}:high`, `:normal`, `:low` | LIST | whole envelopes waiting to run, FIFO (RPUSH, LPOP) |
//! | `{P:T}:delayed` | ZSET | envelope -> due time (ms, server clock); retries wait here too |
//! | `{P:T}:processing` | ZSET | envelope -> lease deadline (ms); the exact bytes are the lease token |
//! | `{P:T}:dead` | ZSET | dead-letter entry -> death time (ms); entry = msgpack `[died_at, error, envelope]` |
//! | `{P:T}:errors` | ZSET | parse-error entry -> time found (ms); entry = msgpack `[at, error, raw]` |
//! | `{P:T}:ids` | SET | explicit ids of jobs queued, delayed or running (de-duplication) |
//! | `{P:T}:seq` | STRING | counter of generated ids |
//! | `{P:T}:stats` | HASH | counters, processing-time histogram `h<i>` + `dur_sum`, per-minute completions `m<minute>` (kept an hour) |
//! | `{P:T}:wake` | LIST | wake-up tokens for idle workers (at most one, usually) |
//! | `{P:T}:paused` | STRING | present while the topic is paused: fetch leases nothing, enqueue wakes nobody |
//! | `{P:T}:cron` | HASH | cron schedules of the topic, per name `N`: `N` next fire instant (ms, UTC), `N:spec` definition (JSON), `N:payload`, `N:last`, `N:last_id`, `N:paused` |
//!
//! Outside any hash tag, touched only by plain commands (each command one
//! key), never by scripts, so they may live on any Cluster slot (`P:` is
//! `rmq:` without a prefix):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:topics` | SET | known topics |
//! | `P:workers` | ZSET | worker id -> the time its entry expires (ms, server clock: last beat + 3 beats); readers keep the ids scored in the future and anyone may trim the rest |
//! | `P:worker:<id>` | STRING | the worker's heartbeat (JSON [`crate::broker::WorkerInfo`]), with a TTL of 3 beats |
//! | `P:worker:<id>:control` | STRING | `quiet` or `stop`, set by `worker quiet` / `worker stop`, read at every beat; TTL one day |
//!
//! The stats hash also holds `last_completed_ms` (server time of the last
//! ack) and per-minute dead-letter counts `d<minute>` (kept an hour), for
//! queue health.

/// The keys of one topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicKeys {
    /// Pending lists: high, normal, low.
    pub pending: [String; 3],
    /// Delayed and retrying jobs.
    pub delayed: String,
    /// Leased jobs.
    pub processing: String,
    /// Dead-letter queue.
    pub dead: String,
    /// Parse-error store.
    pub errors: String,
    /// Explicit ids in use.
    pub ids: String,
    /// Generated-id counter.
    pub seq: String,
    /// Counters and histograms.
    pub stats: String,
    /// Wake-up tokens.
    pub wake: String,
    /// Present while the topic is paused.
    pub paused: String,
    /// Cron schedules whose runs go to the topic.
    pub cron: String,
}

impl TopicKeys {
    /// The keys of `topic` under `prefix` (which may be empty).
    pub fn new(prefix: &str, topic: &str) -> TopicKeys {
        let tag = if prefix.is_empty() {
            format!("{{{topic}}}")
        } else {
            format!("{{{prefix}:{topic}}}")
        };
        let key = |suffix: &str| format!("{tag}:{suffix}");
        TopicKeys {
            pending: [key("high"), key("normal"), key("low")],
            delayed: key("delayed"),
            processing: key("processing"),
            dead: key("dead"),
            errors: key("errors"),
            ids: key("ids"),
            seq: key("seq"),
            stats: key("stats"),
            wake: key("wake"),
            paused: key("paused"),
            cron: key("cron"),
        }
    }

    /// Every key of the topic (for tests and tools).
    pub fn all(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.pending.iter().map(String::as_str).collect();
        keys.extend([
            self.delayed.as_str(),
            self.processing.as_str(),
            self.dead.as_str(),
            self.errors.as_str(),
            self.ids.as_str(),
            self.seq.as_str(),
            self.stats.as_str(),
            self.wake.as_str(),
            self.paused.as_str(),
            self.cron.as_str(),
        ]);
        keys
    }
}

/// `P:` for the keys outside any hash tag (`rmq:` without a prefix).
fn untagged(prefix: &str, rest: &str) -> String {
    if prefix.is_empty() {
        format!("rmq:{rest}")
    } else {
        format!("{prefix}:{rest}")
    }
}

/// The SET of known topics under `prefix`.
pub fn topics_key(prefix: &str) -> String {
    untagged(prefix, "topics")
}

/// The ZSET of live worker ids under `prefix`, scored by when each entry
/// expires.
pub fn workers_key(prefix: &str) -> String {
    untagged(prefix, "workers")
}

/// The heartbeat of worker `id` under `prefix`.
pub fn worker_key(prefix: &str, id: &str) -> String {
    untagged(prefix, &format!("worker:{id}"))
}

/// The control command (`quiet`, `stop`) waiting for worker `id`.
pub fn worker_control_key(prefix: &str, id: &str) -> String {
    untagged(prefix, &format!("worker:{id}:control"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_one_hash_tag() {
        let keys = TopicKeys::new("prod", "orders");
        assert_eq!(keys.pending[0], "{prod:orders}:high");
        assert_eq!(keys.dead, "{prod:orders}:dead");
        assert!(keys.all().iter().all(|k| k.starts_with("{prod:orders}:")));
        assert_eq!(TopicKeys::new("", "t").wake, "{t}:wake");
        assert_eq!(topics_key(""), "rmq:topics");
        assert_eq!(topics_key("prod"), "prod:topics");
        assert_eq!(workers_key(""), "rmq:workers");
        assert_eq!(worker_key("prod", "h-1-ab"), "prod:worker:h-1-ab");
        assert_eq!(
            worker_control_key("", "h-1-ab"),
            "rmq:worker:h-1-ab:control"
        );
    }
}
