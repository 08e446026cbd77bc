//! The Lua scripts, one per lifecycle transition (`rmq-core/lua/*.lua`),
//! each prefixed with the helpers of `lua/common.lua` it uses.
//!
//! They run by SHA (EVALSHA); `redis::Script` loads a script and retries
//! once when the server answers NOSCRIPT (restart, failover, SCRIPT FLUSH).
//! Scripts are never pipelined, so that fallback covers every call.
//!
//! Each script starts with a `#!lua` shebang (Redis 7): Redis then refuses
//! a script that may grow memory *before* it runs when `maxmemory` is
//! reached, instead of failing its first write half way. Scripts that drain
//! or move jobs carry `flags=allow-oom`, so a full Redis keeps draining.
//!
//! Every call runs its prelude again (a script's locals do not outlive the
//! call), so a script carries only the helpers it names, directly or through
//! other helpers: a plain fetch or ack does not pay for the helpers of
//! cancellation, unique locks or limits.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::Script;

const COMMON: &str = include_str!("../lua/common.lua");

macro_rules! script {
    ($name:ident, $file:literal, $shebang:literal, $doc:literal) => {
        #[doc = $doc]
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(&source($shebang, include_str!(concat!("../lua/", $file))))
        });
    };
}

/// One top-level definition of `common.lua`: a `local` with its body and
/// the comment above it, and the definitions it names.
struct Definition {
    name: &'static str,
    text: &'static str,
    uses: Vec<usize>,
}

/// The definitions of `common.lua`, in order, read once.
static DEFINITIONS: LazyLock<Vec<Definition>> = LazyLock::new(definitions);

/// The index of each definition by name.
type Names = HashMap<&'static str, usize>;

/// The definitions of `common.lua`, in order. A definition starts at a
/// line `local <name>` or `local function <name>` (with the comment lines
/// right above it) and runs to the next one.
fn definitions() -> Vec<Definition> {
    let mut starts = Vec::new();
    let mut offset = 0;
    let mut comment_start = None;
    for line in COMMON.split_inclusive('\n') {
        if line.starts_with("--") {
            comment_start.get_or_insert(offset);
        } else if let Some(rest) = line.strip_prefix("local ") {
            let rest = rest.strip_prefix("function ").unwrap_or(rest);
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            starts.push((comment_start.unwrap_or(offset), &rest[..end]));
            comment_start = None;
        } else {
            comment_start = None;
        }
        offset += line.len();
    }
    let ends = starts
        .iter()
        .skip(1)
        .map(|&(at, _)| at)
        .chain([COMMON.len()]);
    let names: Names = starts
        .iter()
        .enumerate()
        .map(|(i, &(_, name))| (name, i))
        .collect();
    starts
        .iter()
        .zip(ends)
        .map(|(&(at, name), end)| {
            let text = &COMMON[at..end];
            Definition {
                name,
                text,
                uses: named(text, &names),
            }
        })
        .collect()
}

/// Which of `names` `text` names, by index (comments included: at worst a
/// helper too many).
fn named(text: &str, names: &Names) -> Vec<usize> {
    let mut found: Vec<usize> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|word| names.get(word).copied())
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// The script: its shebang, the helpers `body` uses (in their order in
/// `common.lua`), then `body`.
fn source(shebang: &str, body: &str) -> String {
    let definitions = &*DEFINITIONS;
    let names: Names = definitions
        .iter()
        .enumerate()
        .map(|(i, definition)| (definition.name, i))
        .collect();
    let mut used = vec![false; definitions.len()];
    let mut next = named(body, &names);
    while let Some(i) = next.pop() {
        if !used[i] {
            used[i] = true;
            next.extend(&definitions[i].uses);
        }
    }
    let mut source = format!("{shebang}\n");
    for (definition, used) in definitions.iter().zip(used) {
        if used {
            source.push_str(definition.text);
        }
    }
    source.push_str(body);
    source
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
    RESULT,
    "result.lua",
    "#!lua",
    "Keep a completed job's result and tell its waiters."
);
script!(
    CHAIN,
    "chain.lua",
    "#!lua",
    "Create a chain's record, or record a completed step."
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
        &RESULT,
        &CHAIN,
        &BATCH,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_carries_the_helpers_it_uses_and_theirs_only() {
        let script = source("#!lua", "return env_id(ARGV[1])");
        assert!(script.starts_with("#!lua\n"));
        assert!(script.contains("local function env_id(env)"));
        assert!(!script.contains("local function release_lock"));
        // `check_types` needs `wrong_type`, which needs `TYPES`.
        let script = source("#!lua", "check_types('z')");
        for helper in [
            "local TYPES",
            "local function wrong_type",
            "local function check_types",
        ] {
            assert!(script.contains(helper), "{helper} missing");
        }
        assert!(!script.contains("local function env_id"));
    }

    #[test]
    fn the_definitions_cover_common_lua_after_its_header() {
        let definitions = &*DEFINITIONS;
        let declared = COMMON
            .lines()
            .filter(|line| line.starts_with("local "))
            .count();
        assert_eq!(definitions.len(), declared);
        let joined: String = definitions.iter().map(|d| d.text).collect();
        let header = &COMMON[..COMMON.len() - joined.len()];
        assert!(COMMON.ends_with(&joined));
        assert!(header
            .lines()
            .all(|line| line.is_empty() || line.starts_with("--")));
    }
}
