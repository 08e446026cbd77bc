//! `parse-errors list|show|retry|purge`: the store of stored jobs that did
//! not decode. Entries are addressed by their job id when their bytes are a
//! job envelope, else by `@` and a digest of their bytes (see `rmq::broker`).

use rmq::broker::{ParseErrorEntry, UnreadableEntry};
use rmq::{Client, Error};

use super::{one_line, timestamp};
use crate::cli::ParseErrorsCommand;

/// Bytes of an entry shown by `show`.
const PREVIEW: usize = 256;

pub(crate) async fn execute(client: &Client, command: ParseErrorsCommand) -> Result<(), Error> {
    let broker = super::broker(client);
    let topic = match &command {
        ParseErrorsCommand::List { topic, .. }
        | ParseErrorsCommand::Show { topic, .. }
        | ParseErrorsCommand::Retry { topic, .. }
        | ParseErrorsCommand::Purge { topic } => topic,
    };
    super::known_topic(broker, topic).await?;
    match command {
        ParseErrorsCommand::List {
            topic,
            limit,
            offset,
        } => {
            let entries = broker.parse_errors(&topic, offset, limit).await?;
            if entries.is_empty() {
                println!("the parse-error store of `{topic}` is empty");
            }
            for entry in entries {
                match entry {
                    Ok(entry) => println!(
                        "{:<18} at={} size={} {} error={}",
                        entry.address(),
                        timestamp(entry.at_ms),
                        entry.raw.len(),
                        if entry.envelope().is_ok() {
                            "job"
                        } else {
                            "raw"
                        },
                        one_line(&entry.error)
                    ),
                    Err(unreadable) => println!("{:<18} {unreadable}", unreadable.digest()),
                }
            }
        }
        ParseErrorsCommand::Show { topic, address } => {
            match broker.parse_error(&topic, &address).await? {
                Ok(entry) => print_entry(&topic, &entry),
                Err(unreadable) => print_unreadable(&topic, &unreadable),
            }
        }
        ParseErrorsCommand::Retry {
            topic,
            addresses,
            all,
        } => {
            if all {
                let retried = broker.retry_all_parse_errors(&topic).await?;
                println!(
                    "re-enqueued {} job(s) of `{topic}`; skipped {} and {} job(s) whose id a queued or running job holds{}",
                    retried.moved,
                    if retried.unreadable == 1 {
                        "1 entry that is not a job".to_owned()
                    } else {
                        format!("{} entries that are not jobs", retried.unreadable)
                    },
                    retried.busy.len(),
                    super::id_list(&retried.busy),
                );
            } else {
                let addresses: Vec<&str> = addresses.iter().map(String::as_str).collect();
                let moved = broker.retry_parse_errors(&topic, &addresses).await?;
                println!("re-enqueued {moved} job(s) of `{topic}`");
            }
        }
        ParseErrorsCommand::Purge { topic } => {
            let purged = broker.purge_parse_errors(&topic).await?;
            let entries = if purged == 1 { "entry" } else { "entries" };
            println!("deleted {purged} parse-error {entries} of `{topic}`");
        }
    }
    Ok(())
}

fn print_entry(topic: &str, entry: &ParseErrorEntry) {
    println!("topic:       {topic}");
    println!("address:     {}", entry.address());
    println!("digest:      {}", entry.digest());
    println!("found at:    {}", timestamp(entry.at_ms));
    println!("error:       {}", entry.error);
    println!("size:        {} bytes", entry.raw.len());
    print_bytes(&entry.raw);
    match entry.envelope() {
        Ok(envelope) => {
            println!("job:         a valid envelope; its payload did not decode (retry it once the task reads it)");
            println!("id:          {}", envelope.id());
            println!("priority:    {}", envelope.priority());
            println!("attempt:     {}", envelope.attempt());
            println!("enqueued at: {}", timestamp(envelope.enqueued_at_ms()));
            println!("payload:     {}", super::payload_json(envelope.payload()));
        }
        Err(e) => println!(
            "job:         none, the bytes are not a job envelope ({e}); it cannot be retried"
        ),
    }
}

fn print_unreadable(topic: &str, entry: &UnreadableEntry) {
    println!("topic:       {topic}");
    println!("address:     {}", entry.digest());
    println!("found at:    {}", timestamp(entry.at_ms));
    println!("error:       {entry}");
    println!("size:        {} bytes", entry.raw.len());
    print_bytes(&entry.raw);
    println!("job:         none, the entry cannot be read; it cannot be retried");
}

/// The first bytes, escaped and in hex.
fn print_bytes(bytes: &[u8]) {
    let shown = &bytes[..bytes.len().min(PREVIEW)];
    let more = match bytes.len() - shown.len() {
        0 => String::new(),
        n => format!(" … ({n} more bytes)"),
    };
    println!("escaped:     \"{}\"{more}", shown.escape_ascii());
    let hex: Vec<String> = shown.iter().take(64).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 64 { " …" } else { "" };
    println!("hex:         {}{more}", hex.join(" "));
}
