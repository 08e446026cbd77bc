//! Whatever Redis refuses, no job ends up in no structure (or in two): a key
//! of the wrong type planted at each key of a topic makes the transitions
//! that write it fail whole, with an error that names the key, and once the
//! key is removed every job runs.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use rmq_core::broker::{Failure, NewJob};
use rmq_core::keys::TopicKeys;
use rmq_core::{Error, Priority};
use support::{spec, Env, LEASE};

/// Jobs of `topic` in Redis (a planted key counts as empty) plus `acked`.
async fn census(env: &Env, keys: &TopicKeys, acked: usize) -> usize {
    let mut raw = env.raw().await;
    let mut total = acked;
    for list in &keys.pending {
        total += raw.llen::<_, usize>(list).await.unwrap_or(0);
    }
    for zset in [&keys.delayed, &keys.processing, &keys.dead, &keys.errors] {
        total += raw.zcard::<_, usize>(zset).await.unwrap_or(0);
    }
    total
}

/// Checks a step's outcome: success, or an error naming the planted key.
fn check<T>(step: &str, planted: &str, result: Result<T, Error>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            let text = error.to_string();
            assert!(
                text.contains(planted) && text.contains("nothing was changed"),
                "{step} with {planted} planted failed without naming it: {text}"
            );
            None
        }
    }
}

fn jobs(payloads: &[&'static str], ids: Option<&[&'static str]>) -> Vec<NewJob<'static>> {
    payloads
        .iter()
        .enumerate()
        .map(|(i, p)| NewJob {
            payload: p.as_bytes(),
            id: ids.map(|ids| ids[i]),
        })
        .collect()
}

/// Plants a key of the wrong type at `planted`: a string, or a hash where
/// rmq keeps its string counter.
async fn plant(env: &Env, keys: &TopicKeys, planted: &str) {
    let mut raw = env.raw().await;
    let _: () = raw.del(planted).await.unwrap();
    if planted == keys.seq {
        let _: () = raw.hset(planted, "foreign", "1").await.unwrap();
    } else {
        let _: () = raw.set(planted, "foreign").await.unwrap();
    }
}

#[tokio::test]
async fn a_foreign_key_anywhere_in_a_topic_loses_no_job() {
    let env = Env::new().await;
    let count = TopicKeys::new("", "probe").all().len();
    for index in 0..count {
        // Planted before the jobs arrive, and (where that destroys no job)
        // after they are queued.
        scenario(&env, &format!("before{index}"), index, true).await;
        scenario(&env, &format!("after{index}"), index, false).await;
    }
}

async fn scenario(env: &Env, topic: &str, index: usize, plant_first: bool) {
    let keys = TopicKeys::new("", topic);
    let planted = keys.all()[index].to_owned();
    if plant_first {
        plant(env, &keys, &planted).await;
    }
    let mut accepted = 0;
    let mut acked = 0;
    let broker = &env.broker;
    let mut delayed = spec(Priority::Low);
    delayed.delay = Duration::from_millis(1);
    // Expires before it is fetched: the fetch files it as dead.
    let mut brief = spec(Priority::Low);
    brief.ttl = Some(Duration::from_millis(1));
    for (spec, batch) in [
        (brief, jobs(&["k"], None)),
        (
            spec(Priority::Normal),
            jobs(&["a", "b", "c", "d"], Some(&["a", "b", "c", "d"])),
        ),
        (spec(Priority::High), jobs(&["e", "f", "g", "h"], None)),
        (delayed, jobs(&["i", "j"], None)),
    ] {
        if check(
            "enqueue",
            &planted,
            broker.enqueue(topic, &spec, &batch).await,
        )
        .is_some()
        {
            accepted += batch.len();
        }
        assert_eq!(
            census(env, &keys, acked).await,
            accepted,
            "enqueue, {planted}"
        );
    }
    // Bytes that are no job: the fetch files them as a parse error.
    let mut raw = env.raw().await;
    let pushed: redis::RedisResult<()> = raw.rpush(&keys.pending[2], "garbage").await;
    if pushed.is_ok() {
        accepted += 1;
    }
    if !plant_first {
        assert_eq!(accepted, 12);
        let mut raw = env.raw().await;
        let holds_jobs = [&keys.delayed, &keys.ids, &keys.seq, &keys.index]
            .iter()
            .chain(keys.pending.iter().collect::<Vec<_>>().iter())
            .any(|k| **k == planted);
        if holds_jobs {
            return;
        }
        let exists: bool = raw.exists(&planted).await.unwrap();
        assert!(
            !exists || planted == keys.wake || planted == keys.stats,
            "{planted}"
        );
        plant(env, &keys, &planted).await;
    }
    tokio::time::sleep(Duration::from_millis(5)).await;

    let held = check("fetch", &planted, broker.fetch(topic, 20, LEASE).await)
        .map(|f| f.jobs)
        .unwrap_or_default();
    assert_eq!(
        census(env, &keys, acked).await,
        accepted,
        "fetch, {planted}"
    );
    // Jobs whose report fails stay leased; they are released at the end.
    let leased = held.clone();
    let mut held = held.into_iter();
    let to_ack: Vec<_> = held.by_ref().take(3).collect();
    let durations = vec![Duration::from_millis(1); to_ack.len()];
    if let Some(lost) = check(
        "ack",
        &planted,
        broker.ack(topic, &to_ack, &durations).await,
    ) {
        acked += to_ack.len() - lost.len();
    }
    assert_eq!(census(env, &keys, acked).await, accepted, "ack, {planted}");
    for (permanent, job) in [(false, held.next()), (true, held.next())] {
        let Some(job) = job else { continue };
        let failure = Failure {
            error: "boom",
            permanent,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        check("fail", &planted, broker.fail(topic, &job, &failure).await);
        assert_eq!(census(env, &keys, acked).await, accepted, "fail, {planted}");
    }
    if let Some(job) = held.next() {
        check(
            "reject",
            &planted,
            broker.reject(topic, &job, "bad payload").await,
        );
        assert_eq!(
            census(env, &keys, acked).await,
            accepted,
            "reject, {planted}"
        );
    }
    let rest: Vec<_> = held.collect();
    check("extend", &planted, broker.extend(topic, &rest, LEASE).await);
    check("release", &planted, broker.release(topic, &rest).await);
    assert_eq!(
        census(env, &keys, acked).await,
        accepted,
        "release, {planted}"
    );

    // A lease that expires, then recovery, retention and dead retry.
    check(
        "fetch",
        &planted,
        broker.fetch(topic, 2, Duration::from_millis(1)).await,
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    check("recover", &planted, broker.recover(topic, 100).await);
    assert_eq!(
        census(env, &keys, acked).await,
        accepted,
        "recover, {planted}"
    );
    check("trim", &planted, broker.trim(topic).await);
    check("dead retry", &planted, broker.retry_all_dead(topic).await);
    assert_eq!(
        census(env, &keys, acked).await,
        accepted,
        "dead retry, {planted}"
    );

    // Without the foreign key, every accepted job runs.
    let mut raw = env.raw().await;
    let _: () = raw.del(&planted).await.unwrap();
    broker.retry_all_dead(topic).await.unwrap();
    broker.release(topic, &leased).await.unwrap();
    recover_all(env, topic).await;
    loop {
        let fetched = broker.fetch(topic, 100, LEASE).await.unwrap();
        if fetched.jobs.is_empty() {
            if fetched.next_due.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            continue;
        }
        let durations = vec![Duration::from_millis(1); fetched.jobs.len()];
        let lost = broker.ack(topic, &fetched.jobs, &durations).await.unwrap();
        assert!(lost.is_empty());
        acked += fetched.jobs.len();
    }
    let stats = broker.stats(topic).await.unwrap();
    assert_eq!(
        acked + (stats.parse_errors + stats.dead) as usize,
        accepted,
        "with {planted} planted, jobs were lost"
    );
}

/// Returns every job still leased with a short lease to the queue.
async fn recover_all(env: &Env, topic: &str) {
    loop {
        let recovered = env.broker.recover(topic, 100).await.unwrap();
        match recovered.next_deadline {
            None => return,
            Some(wait) => tokio::time::sleep(wait + Duration::from_millis(2)).await,
        }
    }
}
