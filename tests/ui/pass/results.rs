//! Tasks with results: `keep_result` handles typed by the function's
//! return type, and chains that hand a result on.

use std::time::Duration;

use rmq::{Chain, ChainJob, Client, Enqueued, Job, JobId, Task, TaskError};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub words: usize,
}

#[rmq::task(keep_result = "1h")]
async fn summarize(text: String) -> Result<Summary, TaskError> {
    Ok(Summary {
        words: text.split_whitespace().count(),
    })
}

/// A non-unit output without `keep_result`: the value is not kept, the
/// receipt is an id.
#[rmq::task]
async fn count(text: String) -> Result<usize, TaskError> {
    Ok(text.len())
}

/// Its output is the next step's payload.
#[rmq::task]
async fn split(text: String) -> Result<Store, TaskError> {
    Ok(Store { parts: vec![text] })
}

#[rmq::task(keep_result = "10m", unique = "1m")]
async fn store(parts: Vec<String>) -> Result<u64, TaskError> {
    Ok(parts.len() as u64)
}

#[rmq::task(keep_result = "500ms")]
async fn ping() -> Result<(), TaskError> {
    Ok(())
}

async fn demo(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    let job: Job<Summary> = Summarize { text: "a b".into() }.enqueue(client).await?;
    let summary: Summary = job.result_timeout(Duration::from_secs(5)).await?;
    let _ = summary.words;
    let _: JobId = Count { text: "abc".into() }.enqueue(client).await?;
    // A unique task says whether it was a duplicate; its handle is made
    // from the id.
    let enqueued: Enqueued = Store { parts: vec![] }.enqueue(client).await?;
    let _: Job<u64> = client.handle::<Store>(enqueued.into_id());
    let _: Job<()> = Ping {}.enqueue(client).await?;
    let _: Option<Summary> = client.result("summarize", "1").await?;
    let chain: ChainJob<u64> = Split { text: "x".into() }
        .then_result::<Store>()
        .enqueue(client)
        .await?;
    let _: u64 = chain.result().await?;
    let _: ChainJob<()> = Chain::new(Ping {})
        .then(Count { text: "y".into() })
        .then_with(Ping {}.priority(rmq::Priority::High))
        .chain_id("c-1")
        .enqueue(client)
        .await?;
    Ok(())
}

fn main() {
    assert_eq!(
        Summarize::descriptor().policy.keep_result,
        Some(Duration::from_secs(3600))
    );
    assert_eq!(Count::descriptor().policy.keep_result, None);
    let _ = demo;
}
