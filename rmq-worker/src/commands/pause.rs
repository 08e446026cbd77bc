//! `pause`, `resume`: stop and restart the leasing of a topic's jobs on
//! every worker, through Redis.

use rmq::{Client, Error};

pub(crate) async fn pause(client: &Client, topic: &str) -> Result<(), Error> {
    let broker = super::broker(client);
    super::known_topic(broker, topic).await?;
    if broker.pause(topic).await? {
        println!("paused topic `{topic}`: its jobs stay queued until `resume {topic}`");
    } else {
        println!("topic `{topic}` was already paused");
    }
    Ok(())
}

pub(crate) async fn resume(client: &Client, topic: &str) -> Result<(), Error> {
    let broker = super::broker(client);
    super::known_topic(broker, topic).await?;
    if broker.resume(topic).await? {
        println!("resumed topic `{topic}`");
    } else {
        println!("topic `{topic}` was not paused");
    }
    Ok(())
}
