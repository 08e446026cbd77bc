//! `enqueue <topic> <json>`: the JSON inline, `-` for standard input or
//! `@path` for a file (a command-line argument is limited to 128 KiB).

use std::io::Read;

use rmq::{Client, JobOptions};

use super::CliError;
use crate::cli::EnqueueArgs;

pub(crate) async fn enqueue(client: &Client, args: EnqueueArgs) -> Result<(), CliError> {
    let json = read_json(&args.json)?;
    let options = JobOptions {
        delay: args.delay,
        priority: args.priority,
        ttl: args.ttl,
        id: args.id.map(Into::into),
        unique_key: args.unique_key,
        unique: None,
    };
    let enqueued = client.submit_json(&args.topic, &json, &options).await?;
    println!("{}", enqueued.id());
    match enqueued {
        rmq::Enqueued::Duplicate(id) => eprintln!(
            "not enqueued: job {id} holds the unique lock of this payload (see `unique show`)"
        ),
        rmq::Enqueued::Replaced(id) => {
            eprintln!("debounced: job {id} took this payload and waits again")
        }
        _ => {}
    }
    Ok(())
}

/// The JSON argument: itself, standard input for `-`, a file for `@path`.
fn read_json(arg: &str) -> Result<String, CliError> {
    if arg == "-" {
        let mut json = String::new();
        std::io::stdin().read_to_string(&mut json).map_err(|e| {
            CliError::Input(format!("cannot read the JSON from standard input: {e}"))
        })?;
        return Ok(json);
    }
    match arg.strip_prefix('@') {
        Some("") => Err(CliError::Input(
            "`@` must be followed by a file name, e.g. @job.json".to_owned(),
        )),
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::Input(format!("cannot read the JSON file `{path}`: {e}"))),
        None => Ok(arg.to_owned()),
    }
}
