//! The Lua scripts, one per lifecycle transition (`rmq-core/lua/*.lua`),
//! each prefixed with the shared helpers of `lua/common.lua`.
//!
//! They run by SHA (EVALSHA); `redis::Script` loads a script and retries
//! once when the server answers NOSCRIPT (restart, failover, SCRIPT FLUSH).
//! Scripts are never pipelined, so that fallback covers every call.
//!
//! Each script starts with a `#!lua` shebang (Redis 7): Redis then refuses
//! a script that may grow memory *before* it runs when `maxmemory` is
//! reached, instead of failing its first write half way. Scripts that drain
//! or move jobs carry `flags=allow-oom`, so a full Redis keeps draining.

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal, $shebang:literal, $doc:literal) => {
        #[doc = $doc]
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                $shebang,
                "\n",
                include_str!("../lua/common.lua"),
                include_str!(concat!("../lua/", $file))
            ))
        });
    };
}

script!(
    ENQUEUE,
    "enqueue.lua",
    "#!lua",
    "Enqueue a batch of one topic."
);
script!(
    FETCH,
    "fetch.lua",
    "#!lua flags=allow-oom",
    "Promote due jobs, then lease a batch."
);
script!(
    ACK,
    "ack.lua",
    "#!lua flags=allow-oom",
    "Complete a batch of leased jobs."
);
script!(
    FAIL,
    "fail.lua",
    "#!lua flags=allow-oom",
    "Retry later or dead-letter a failed job."
);
script!(
    EXTEND,
    "extend.lua",
    "#!lua flags=allow-oom",
    "Extend leases."
);
script!(
    RELEASE,
    "release.lua",
    "#!lua flags=allow-oom",
    "Return held jobs to the front."
);
script!(
    RECOVER,
    "recover.lua",
    "#!lua flags=allow-oom",
    "Requeue jobs whose lease expired."
);
script!(
    REJECT,
    "reject.lua",
    "#!lua flags=allow-oom",
    "Move an undecodable job to the parse-error store."
);
script!(
    DEAD_RETRY,
    "dead_retry.lua",
    "#!lua",
    "Re-enqueue dead-lettered jobs."
);
script!(
    REGISTER,
    "register.lua",
    "#!lua flags=allow-oom",
    "Record topics in the set of known topics."
);
script!(
    PARSE_ERROR_RETRY,
    "parse_error_retry.lua",
    "#!lua",
    "Re-enqueue parse-error entries whose bytes are job envelopes."
);
script!(
    TRIM,
    "trim.lua",
    "#!lua flags=allow-oom",
    "Age retention and old minute buckets."
);

script!(
    REMOVE,
    "remove.lua",
    "#!lua flags=allow-oom",
    "Delete entries, or run delayed jobs now."
);
script!(
    PURGE,
    "purge.lua",
    "#!lua flags=allow-oom",
    "Delete a slice of a pending list or of the delayed set."
);

script!(
    STATUS,
    "status.lua",
    "#!lua flags=no-writes",
    "Read where an indexed job is."
);
script!(
    CANCEL,
    "cancel.lua",
    "#!lua flags=allow-oom",
    "Cancel a queued job, or ask a running one to stop."
);

script!(
    CRON,
    "cron.lua",
    "#!lua",
    "Add a cron schedule, fire its due occurrences, or run it now."
);

script!(
    BATCH,
    "batch.lua",
    "#!lua flags=allow-oom",
    "Create a batch, count its finished children, mark its callback fired."
);

/// Every script, for loading ahead of time.
pub(crate) fn all() -> Vec<&'static Script> {
    vec![
        &ENQUEUE,
        &FETCH,
        &ACK,
        &FAIL,
        &EXTEND,
        &RELEASE,
        &RECOVER,
        &REJECT,
        &DEAD_RETRY,
        &REGISTER,
        &PARSE_ERROR_RETRY,
        &TRIM,
        &REMOVE,
        &PURGE,
        &STATUS,
        &CANCEL,
        &CRON,
        &BATCH,
    ]
}
