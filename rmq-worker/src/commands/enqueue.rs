//! `enqueue <topic> <json>`.

use rmq::{Client, Error, JobOptions};

use crate::cli::EnqueueArgs;

pub(crate) async fn enqueue(client: &Client, args: EnqueueArgs) -> Result<(), Error> {
    let options = JobOptions {
        delay: args.delay,
        priority: args.priority,
        ttl: args.ttl,
        id: args.id.map(Into::into),
    };
    let id = client
        .enqueue_json(&args.topic, &args.json, &options)
        .await?;
    println!("{id}");
    Ok(())
}
