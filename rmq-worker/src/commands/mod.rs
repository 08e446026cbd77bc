//! One module per subcommand.

mod dlq;
mod enqueue;
mod run;
mod stats;
mod tasks;

use rmq::{Client, Config, Error};

use crate::cli::{Command, CommandLine, Global};
use crate::Configure;

pub(crate) async fn execute(cli: CommandLine, configure: Configure) -> Result<(), Error> {
    match cli.command {
        Command::Run(args) => run::run(&cli.global, args, configure).await,
        Command::Tasks => tasks::list(),
        Command::Stats(args) => stats::show(&connect(&cli.global).await?, args).await,
        Command::Dlq(command) => dlq::execute(&connect(&cli.global).await?, command).await,
        Command::Enqueue(args) => enqueue::enqueue(&connect(&cli.global).await?, args).await,
    }
}

/// The environment's configuration with the command line's overrides.
fn config(global: &Global) -> Result<Config, Error> {
    let mut config = Config::from_env()?;
    if let Some(url) = &global.redis_url {
        config.redis_url = url.clone();
    }
    if let Some(prefix) = &global.prefix {
        config.queue_prefix = prefix.clone();
    }
    Ok(config)
}

async fn connect(global: &Global) -> Result<Client, Error> {
    Client::connect(config(global)?).await
}

fn broker(client: &Client) -> &rmq::Broker {
    client
        .broker()
        .expect("Client::connect returns a Redis-backed client")
}

/// Fails with `UnknownTopic` unless `topic` is linked into this binary or
/// known to Redis (something was enqueued or served on it).
async fn known_topic(broker: &rmq::Broker, topic: &str) -> Result<(), Error> {
    let linked = rmq::Registry::global().is_ok_and(|r| r.get(topic).is_some());
    if linked || broker.topics().await?.iter().any(|t| t == topic) {
        Ok(())
    } else {
        Err(Error::UnknownTopic(topic.to_owned()))
    }
}
