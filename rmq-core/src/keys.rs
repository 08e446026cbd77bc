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
//! | `{P:T}:index` | HASH | job id -> msgpack `[state, exact member, note]` of each indexed job (envelope flag bit 3): the status-by-id index, kept by every transition script |
//! | `{P:T}:cancel` | HASH | job id -> `1` (keep as cancelled) or `0` (drop): running jobs asked to cancel, read by lease renewal |
//! | `{P:T}:locks` | HASH | unique jobs whose lock a transition releases: job id -> mode, lock key (and, debounce, the queued envelope) |
//! | `{P:T}:unique:<key>` | STRING | a unique lock: the id of the job holding it, with the lock's time to live; `<key>` is a digest of the payload (fields) or the per-call key |
//!
//! The scripts that end a job find a lock key from `{P:T}:locks` (it is not
//! in their KEYS); it is built from that hash's own name, so it always has
//! the topic's hash tag and lives on the script's Cluster slot.
//! | `{P:T}:keyed` | LIST | topics with a `rate_key`: the ring of keys with queued jobs, each once; fetch turns it (LMOVE) one job per key |
//! | `{P:T}:keyed:q:<key>` | LIST | topics with a `rate_key`: the jobs of one key, FIFO (whole envelopes); gone when empty |
//! | `{P:T}:keyed:r:<key>` | STRING | topics with a `rate_key` and a `rate`: the key's GCRA state (µs); expires when it no longer matters |
//! | `{P:T}:rate` | STRING | topics with a `rate`: the GCRA theoretical start time of the next job (µs, server clock); expires when it no longer matters |
//! | `{P:T}:result:<id>` | STRING | tasks with `keep_result`: the completed job's return value (MessagePack), with the task's `keep_result` as time to live |
//! | `{P:T}:done:<id>` | LIST | tasks with `keep_result` and chain steps: one element once the job has finished (completed, dead or cancelled), for waiters to block on (`BLMOVE` of the list onto itself keeps it for the next waiter); lives a minute |
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
//! | `{P:chain:<id>}` | HASH | a chain (under a hash tag of its own, touched by plain commands and `lua/chain.lua` only): `len` steps, `done` the last completed step (-1 before the first), per step `i` its topic `t<i>`, options `o<i>` and payload `p<i>` (absent when it takes the previous step's result); expires `dead_letter_max_age` after its last change |
//! | `P:worker:<id>:control` | STRING | `quiet` or `stop`, set by `worker quiet` / `worker stop`, read at every beat; TTL one day |
//!
//! The sub-queue and per-key rate keys are named inside the fetch and
//! enqueue scripts from the ring's name (they cannot be listed up front),
//! always under the topic's hash tag, so they sit on its Cluster slot.
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
    /// The status-by-id index of indexed jobs.
    pub index: String,
    /// Cancellation requests of running jobs.
    pub cancel: String,
    /// Unique jobs holding a lock a transition releases.
    pub locks: String,
    /// `{P:T}:unique:`, the prefix of every unique lock.
    pub unique_prefix: String,
    /// The rate limiter's state (topics with a `rate`).
    pub rate: String,
    /// The ring of keys with work (topics with a `rate_key`); each key's
    /// jobs wait in `<keyed>:q:<key>`.
    pub keyed: String,
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
            index: key("index"),
            cancel: key("cancel"),
            locks: key("locks"),
            unique_prefix: key("unique:"),
            rate: key("rate"),
            keyed: key("keyed"),
            cron: key("cron"),
        }
    }

    /// The unique lock of key `key` (after `{P:T}:unique:`).
    pub fn unique(&self, key: &str) -> String {
        format!("{}{key}", self.unique_prefix)
    }

    /// The kept result of job `id` (tasks with `keep_result`).
    pub fn result(&self, id: &str) -> String {
        format!("{}{id}", self.result_prefix())
    }

    /// `{P:T}:result:`, the prefix of every kept result.
    pub fn result_prefix(&self) -> String {
        self.unique_prefix.replacen(":unique:", ":result:", 1)
    }

    /// The list that holds an element once job `id` has finished, for
    /// waiters on its result.
    pub fn done(&self, id: &str) -> String {
        let mut key = self.unique_prefix.replacen(":unique:", ":done:", 1);
        key.push_str(id);
        key
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
            self.index.as_str(),
            self.cancel.as_str(),
            self.locks.as_str(),
            self.rate.as_str(),
            self.keyed.as_str(),
            self.cron.as_str(),
        ]);
        keys
    }
}

impl TopicKeys {
    /// The sub-queue of fair-queueing key `key` (topics with a `rate_key`).
    pub fn sub_queue(&self, key: &[u8]) -> Vec<u8> {
        let mut name = format!("{}:q:", self.keyed).into_bytes();
        name.extend_from_slice(key);
        name
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

/// The record of chain `id` under `prefix`, under a hash tag of its own.
pub fn chain_key(prefix: &str, id: &str) -> String {
    if prefix.is_empty() {
        format!("{{chain:{id}}}")
    } else {
        format!("{{{prefix}:chain:{id}}}")
    }
}

/// The keys of batch `id`: its record and the hash of its finished
/// children, both under the batch's own hash tag `{P:batch:<id>}` (one
/// Cluster slot per batch, whatever topics its children run on):
///
/// | key | type | holds |
/// |---|---|---|
/// | `{P:batch:<id>}` | HASH | `total`, counts `s` (succeeded), `d` (dead), `c` (cancelled), callback `topic` / `priority` / `retries`, `fired`, `created` (ms) |
/// | `{P:batch:<id>}:done` | HASH | child job id -> `s`, `d` or `c`: each child counted once |
///
/// Both expire a week after the last child finished.
pub fn batch_keys(prefix: &str, id: &str) -> [String; 2] {
    let tag = if prefix.is_empty() {
        format!("{{batch:{id}}}")
    } else {
        format!("{{{prefix}:batch:{id}}}")
    };
    let done = format!("{tag}:done");
    [tag, done]
}

/// The record that event `name` (`module::Type`) was published with the
/// id `id` and reached every subscriber: a string, for a week. One key per
/// command, so it may live on any Cluster slot.
pub fn event_key(prefix: &str, name: &str, id: &str) -> String {
    untagged(prefix, &format!("event:{name}:{id}"))
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
        assert_eq!(keys.result("7"), "{prod:orders}:result:7");
        assert_eq!(keys.done("7"), "{prod:orders}:done:7");
        assert_eq!(chain_key("prod", "c1"), "{prod:chain:c1}");
        assert_eq!(chain_key("", "c1"), "{chain:c1}");
        assert_eq!(worker_key("prod", "h-1-ab"), "prod:worker:h-1-ab");
        assert_eq!(
            worker_control_key("", "h-1-ab"),
            "rmq:worker:h-1-ab:control"
        );
    }
}
