//! The Lua scripts, one per lifecycle transition (`rmq-core/lua/*.lua`),
//! each prefixed with the shared helpers of `lua/common.lua`.
//!
//! They run by SHA (EVALSHA); `redis::Script` loads a script and retries
//! once when the server answers NOSCRIPT (restart, failover, SCRIPT FLUSH).
//! Scripts are never pipelined, so that fallback covers every call.

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal, $doc:literal) => {
        #[doc = $doc]
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../lua/common.lua"),
                include_str!(concat!("../lua/", $file))
            ))
        });
    };
}

script!(ENQUEUE, "enqueue.lua", "Enqueue a batch of one topic.");
script!(FETCH, "fetch.lua", "Promote due jobs, then lease a batch.");
script!(ACK, "ack.lua", "Complete a batch of leased jobs.");
script!(FAIL, "fail.lua", "Retry later or dead-letter a failed job.");
script!(EXTEND, "extend.lua", "Extend leases.");
script!(RELEASE, "release.lua", "Return held jobs to the front.");
script!(RECOVER, "recover.lua", "Requeue jobs whose lease expired.");
script!(
    REJECT,
    "reject.lua",
    "Move an undecodable job to the parse-error store."
);
script!(
    DEAD_RETRY,
    "dead_retry.lua",
    "Re-enqueue dead-lettered jobs."
);
script!(TRIM, "trim.lua", "Age retention and old minute buckets.");

/// Every script, for loading ahead of time.
pub(crate) fn all() -> [&'static Script; 10] {
    [
        &ENQUEUE,
        &FETCH,
        &ACK,
        &FAIL,
        &EXTEND,
        &RELEASE,
        &RECOVER,
        &REJECT,
        &DEAD_RETRY,
        &TRIM,
    ]
}
