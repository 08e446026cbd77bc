//! Bad data never breaks administration: corrupt dead-letter and parse-error
//! entries are listed as unreadable and skipped by retries, a non-integer
//! stats field is skipped and named, and the parse-error store can retry the
//! entries whose bytes are still jobs.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use rmq_core::broker::{Failure, NewJob};
use rmq_core::envelope::{self, Envelope};
use rmq_core::keys::TopicKeys;
use rmq_core::{Error, Priority};
use support::{payloads, spec, Env, LEASE};

const GARBAGE: &[u8] = b"\xffgarbage";

/// A `[time, error, bytes]` entry as the scripts write it (cmsgpack: a
/// fixarray of an integer and two strings).
fn entry(at_ms: u64, error: &str, bytes: &[u8]) -> Vec<u8> {
    let mut buf = vec![0x93, 0xcf];
    buf.extend_from_slice(&at_ms.to_be_bytes());
    for text in [error.as_bytes(), bytes] {
        buf.push(0xdb);
        buf.extend_from_slice(&(text.len() as u32).to_be_bytes());
        buf.extend_from_slice(text);
    }
    buf
}

fn permanent() -> Failure<'static> {
    Failure {
        error: "dead",
        permanent: true,
        retry_delay: Duration::ZERO,
        cancelled: false,
    }
}

async fn kill(env: &Env, names: &[&str]) {
    env.push("t", names, &spec(Priority::Normal)).await;
    for job in env
        .broker
        .fetch("t", names.len(), LEASE)
        .await
        .unwrap()
        .jobs
    {
        env.broker.fail("t", &job, &permanent()).await.unwrap();
    }
}

/// Adds `member` to the sorted set `key` by hand, as another program might.
async fn plant(env: &Env, key: &str, score: u64, member: &[u8]) {
    let _: () = env.raw().await.zadd(key, member, score).await.unwrap();
}

#[tokio::test]
async fn corrupt_dead_letter_entries_are_listed_as_unreadable_and_retry_all_moves_the_rest() {
    let env = Env::new().await;
    let keys = TopicKeys::new("", "t");
    kill(&env, &["a", "b"]).await;
    plant(&env, &keys.dead, 1, GARBAGE).await;
    let not_a_job = entry(2, "boom", b"junk");
    plant(&env, &keys.dead, 2, &not_a_job).await;

    let listed = env.broker.dead_letters("t", 0, 10).await.unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    let jobs: Vec<Envelope> = listed
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .map(|d| d.envelope.clone())
        .collect();
    assert_eq!(payloads(&jobs), ["b", "a"], "newest first");
    let unreadable: Vec<_> = listed.iter().filter_map(|e| e.as_ref().err()).collect();
    assert_eq!(unreadable.len(), 2);
    // Oldest last: the `not_a_job` entry (score 2), then the garbage (1).
    assert_eq!(unreadable[0].raw, not_a_job);
    assert!(
        unreadable[0].reason.contains("not an envelope"),
        "{}",
        unreadable[0]
    );
    assert_eq!(
        (unreadable[1].raw.as_slice(), unreadable[1].at_ms),
        (GARBAGE, 1)
    );
    assert!(
        unreadable[1]
            .to_string()
            .starts_with("<unreadable entry, 8 bytes: "),
        "{}",
        unreadable[1]
    );
    // One page past the corrupt entries still reads.
    let page = env.broker.dead_letters("t", 3, 1).await.unwrap();
    assert!(page[0].is_err());
    assert_eq!(
        env.broker.dead_letter("t", "1").await.unwrap().error,
        "dead"
    );

    let retried = env.broker.retry_all_dead("t").await.unwrap();
    assert_eq!(
        (retried.moved, retried.unreadable, retried.busy.len()),
        (2, 2, 0)
    );
    let again = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(payloads(&again), ["a", "b"], "oldest first");
    let left = env.broker.dead_letters("t", 0, 10).await.unwrap();
    assert!(left.iter().all(Result::is_err), "only the corrupt stay");
    assert_eq!(env.broker.purge_dead("t").await.unwrap(), 2);
}

#[tokio::test]
async fn retry_all_pages_past_corrupt_entries_spread_over_several_pages() {
    let env = Env::new().await;
    let keys = TopicKeys::new("", "t");
    let mut raw = env.raw().await;
    // 1,500 dead jobs with a corrupt entry after every fifth one: more than
    // one page of 1,000, with corrupt entries in every page.
    let mut members: Vec<(u64, Vec<u8>)> = Vec::new();
    for i in 0..1500u64 {
        let env_bytes = envelope::encode(
            Priority::Low,
            0,
            0,
            1_000 + i,
            0,
            &i.to_string(),
            false,
            b"p",
        );
        members.push((1_000 + i, entry(1_000 + i, "dead", &env_bytes)));
        if i % 5 == 0 {
            members.push((1_000 + i, format!("corrupt {i}").into_bytes()));
        }
    }
    for chunk in members.chunks(500) {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&keys.dead);
        for (score, member) in chunk {
            cmd.arg(*score).arg(member.as_slice());
        }
        let _: () = cmd.query_async(&mut raw).await.unwrap();
    }

    let retried = env.broker.retry_all_dead("t").await.unwrap();
    assert_eq!((retried.moved, retried.unreadable), (1500, 300));
    let queued: usize = raw.llen(&keys.pending[2]).await.unwrap();
    assert_eq!(queued, 1500);
    let left: usize = raw.zcard(&keys.dead).await.unwrap();
    assert_eq!(left, 300);
}

/// A parse-error entry whose bytes are a job (explicit id `k`, a payload
/// the task could not decode), one whose bytes are not, and a corrupt one.
/// Returns the address of the second and the digest of the third.
async fn three_parse_errors(env: &Env) -> (String, String) {
    let keys = TopicKeys::new("", "t");
    let k = NewJob {
        payload: b"\xc1",
        id: Some("k"),
    };
    env.broker
        .enqueue("t", &spec(Priority::High), &[k])
        .await
        .unwrap();
    let job = env
        .broker
        .fetch("t", 1, LEASE)
        .await
        .unwrap()
        .jobs
        .remove(0);
    assert!(env.broker.reject("t", &job, "invalid type").await.unwrap());
    let _: () = env
        .raw()
        .await
        .rpush(&keys.pending[1], b"tiny")
        .await
        .unwrap();
    assert!(env
        .broker
        .fetch("t", 1, LEASE)
        .await
        .unwrap()
        .jobs
        .is_empty());
    plant(env, &keys.errors, 1, GARBAGE).await;

    let listed = env.broker.parse_errors("t", 0, 10).await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let readable: Vec<_> = listed.iter().filter_map(|e| e.as_ref().ok()).collect();
    assert_eq!(readable.len(), 2);
    let job = readable.iter().find(|e| e.envelope().is_ok()).unwrap();
    assert_eq!(job.address(), "k", "a job is addressed by its id");
    let tiny = readable.iter().find(|e| e.envelope().is_err()).unwrap();
    assert_eq!(tiny.raw, b"tiny");
    let address = tiny.address();
    assert!(
        address.starts_with('@') && address.len() == 17,
        "anything else by a digest: {address}"
    );
    assert_eq!(address, tiny.digest());
    let corrupt = listed.iter().find_map(|e| e.as_ref().err()).unwrap();
    assert_eq!(corrupt.raw, GARBAGE);
    (address, corrupt.digest())
}

#[tokio::test]
async fn parse_error_entries_are_found_by_id_or_digest_and_only_jobs_retry() {
    let env = Env::new().await;
    let keys = TopicKeys::new("", "t");
    let (tiny, corrupt) = three_parse_errors(&env).await;

    let k = env.broker.parse_error("t", "k").await.unwrap().unwrap();
    assert_eq!(k.error, "invalid type");
    let by_digest = env
        .broker
        .parse_error("t", &k.digest())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_digest, k);
    let unreadable = env.broker.parse_error("t", &corrupt).await.unwrap();
    assert_eq!(unreadable.unwrap_err().raw, GARBAGE);
    assert!(matches!(
        env.broker.parse_error("t", "nope").await,
        Err(Error::JobNotFound { .. })
    ));

    // Asking for a job and a non-job moves neither.
    let refused = env.broker.retry_parse_errors("t", &["k", &tiny]).await;
    match refused {
        Err(Error::NotRetryable { address, .. }) => assert_eq!(address, tiny),
        other => panic!("expected NotRetryable, got {other:?}"),
    }
    assert!(matches!(
        env.broker.retry_parse_errors("t", &[&corrupt]).await,
        Err(Error::NotRetryable { .. })
    ));
    assert_eq!(env.broker.stats("t").await.unwrap().parse_errors, 3);

    // A live job holding `k` keeps the entry where it is.
    let live = NewJob {
        payload: b"live",
        id: Some("k"),
    };
    env.broker
        .enqueue("t", &spec(Priority::Normal), &[live])
        .await
        .unwrap();
    assert!(matches!(
        env.broker.retry_parse_errors("t", &["k"]).await,
        Err(Error::DuplicateJobId { .. })
    ));
    let live = env.broker.fetch("t", 1, LEASE).await.unwrap().jobs;
    env.broker.ack("t", &live, &[]).await.unwrap();

    assert_eq!(
        env.broker
            .retry_parse_errors("t", &["k", "k"])
            .await
            .unwrap(),
        1
    );
    let again = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id(), again[0].attempt(), again[0].payload()),
        ("k", 1, &b"\xc1"[..])
    );
    assert_eq!(again[0].priority(), Priority::High, "back to its own list");
    let ids: Vec<String> = env.raw().await.smembers(&keys.ids).await.unwrap();
    assert_eq!(ids, ["k"], "the id is reserved again");

    let retried = env.broker.retry_all_parse_errors("t").await.unwrap();
    assert_eq!((retried.moved, retried.unreadable), (0, 2));
    assert_eq!(env.broker.purge_parse_errors("t").await.unwrap(), 2);
}

#[tokio::test]
async fn retry_all_parse_errors_moves_every_job_and_skips_the_rest() {
    let env = Env::new().await;
    three_parse_errors(&env).await;
    let retried = env.broker.retry_all_parse_errors("t").await.unwrap();
    assert_eq!(
        (retried.moved, retried.unreadable, retried.busy.len()),
        (1, 2, 0)
    );
    let again = env.broker.fetch("t", 10, LEASE).await.unwrap().jobs;
    assert_eq!(again.iter().map(|j| j.id()).collect::<Vec<_>>(), ["k"]);
    assert_eq!(env.broker.stats("t").await.unwrap().parse_errors, 2);
}

#[tokio::test]
async fn a_parse_error_retry_that_would_fail_half_way_changes_nothing() {
    let env = Env::new().await;
    let keys = TopicKeys::new("", "t");
    three_parse_errors(&env).await;
    // The pending list of `k`'s priority is not a list: the push would fail
    // after the entry left the store, were the types not checked first.
    let mut raw = env.raw().await;
    let _: () = raw.set(&keys.pending[0], "not a list").await.unwrap();
    let failed = env.broker.retry_parse_errors("t", &["k"]).await;
    assert!(
        matches!(&failed, Err(Error::Redis { .. })) && format!("{failed:?}").contains("WRONGTYPE"),
        "{failed:?}"
    );
    assert!(env.broker.parse_error("t", "k").await.unwrap().is_ok());
    let stored: usize = raw.zcard(&keys.errors).await.unwrap();
    assert_eq!(stored, 3);
    let ids: Vec<String> = raw.smembers(&keys.ids).await.unwrap();
    assert!(ids.is_empty(), "no id reserved: {ids:?}");
}

#[tokio::test]
async fn stats_skip_a_non_integer_field_and_name_it() {
    let env = Env::new().await;
    let keys = TopicKeys::new("", "t");
    kill(&env, &["a"]).await;
    let mut raw = env.raw().await;
    let _: () = raw.hset(&keys.stats, "completed", "abc").await.unwrap();
    let _: () = raw.hset(&keys.stats, "h3", "1.5").await.unwrap();

    let stats = env.broker.stats("t").await.unwrap();
    assert_eq!(stats.skipped_fields, ["completed", "h3"]);
    assert_eq!((stats.completed, stats.failed, stats.dead), (0, 1, 1));
    assert_eq!(env.broker.counter("t", "failed").await.unwrap(), 1);
    let error = env.broker.counter("t", "completed").await.unwrap_err();
    assert!(
        matches!(error, Error::Corrupt { .. }) && error.to_string().contains("`completed`"),
        "{error}"
    );
    assert!(env
        .broker
        .stats("other")
        .await
        .unwrap()
        .skipped_fields
        .is_empty());
}
