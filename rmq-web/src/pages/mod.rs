//! One module per page. Each page reads what it shows from Redis on every
//! request and renders it whole, or only its live part (`?part=live`) for
//! htmx's periodic refresh. A Redis error renders as a banner (503),
//! never a panic.

pub(crate) mod batches;
pub(crate) mod job;
pub(crate) mod locks;
pub(crate) mod overview;
pub(crate) mod schedules;
pub(crate) mod search;
pub(crate) mod tasks;
pub(crate) mod topic;
pub(crate) mod topics;
pub(crate) mod workers;

use std::future::Future;

use rmq::{Broker, Error};

/// Topics known to Redis and those linked into this binary, sorted.
pub(crate) async fn all_topics(broker: &Broker) -> Result<Vec<String>, String> {
    let mut topics = broker.topics().await.map_err(|e| e.to_string())?;
    if let Ok(registry) = rmq::Registry::global() {
        topics.extend(registry.topics().map(str::to_owned));
    }
    topics.sort();
    topics.dedup();
    Ok(topics)
}

/// Runs `read` for every topic at once. A Redis that fails fails the
/// whole; a topic whose keys Redis refuses (another program's data) is left
/// out, with the reason in the second list.
pub(crate) async fn per_topic<'a, T, F, Fut>(
    topics: &'a [String],
    read: F,
) -> Result<(Vec<T>, Vec<String>), String>
where
    F: Fn(&'a str) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let results = futures_util::future::join_all(topics.iter().map(|t| read(t))).await;
    let mut read_ok = Vec::with_capacity(topics.len());
    let mut left_out = Vec::new();
    for (topic, result) in topics.iter().zip(results) {
        match result {
            Ok(value) => read_ok.push(value),
            Err(error) if error.is_transient() => return Err(error.to_string()),
            Err(error) => left_out.push(format!("topic {topic} left out: {error}")),
        }
    }
    Ok((read_ok, left_out))
}
