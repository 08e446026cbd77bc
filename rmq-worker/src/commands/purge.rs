//! `purge TOPIC STATE --yes`: deletes every job of a topic in one state.

use rmq::broker::State;
use rmq::Client;

use super::CliError;

pub(crate) async fn purge(
    client: &Client,
    topic: &str,
    state: State,
    yes: bool,
) -> Result<(), CliError> {
    let broker = super::broker(client);
    super::known_topic(broker, topic).await?;
    if !yes {
        let depth = broker.depth(topic, state).await?;
        return Err(CliError::Input(format!(
            "this deletes the {depth} {state} job(s) of `{topic}` for good: run again with --yes"
        )));
    }
    let purged = broker.purge_state(topic, state).await?;
    println!("deleted {purged} {state} job(s) of `{topic}`");
    Ok(())
}
