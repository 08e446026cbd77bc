//! `search`: jobs by id or by text, through the broker's bounded scan.

use rmq::broker::{Cursor, Needle};
use rmq::{Client, Error};

use super::one_line;
use crate::cli::SearchArgs;

/// Entries read per scan call.
const BUDGET: usize = 5000;

pub(crate) async fn search(client: &Client, args: SearchArgs) -> Result<(), Error> {
    let broker = super::broker(client);
    let topics = match &args.topic {
        Some(topic) => {
            super::known_topic(broker, topic).await?;
            vec![topic.clone()]
        }
        None => super::all_topics(broker).await?,
    };
    let needle = if args.id {
        Needle::Id(args.query.clone())
    } else {
        Needle::text(&args.query)
    };
    let mut cursor = Cursor::default();
    let (mut found, mut scanned) = (0, 0);
    loop {
        let page = broker
            .search(&topics, &needle, cursor, BUDGET, args.limit - found)
            .await?;
        scanned += page.scanned;
        for (topic, entry) in page.hits.into_iter().take(args.limit - found) {
            found += 1;
            let payload = entry
                .envelope
                .as_ref()
                .map(|e| match rmq::codec::to_json(e.payload()) {
                    Ok(json) => one_line(&json.to_string()),
                    Err(error) => format!("<undecodable payload: {error}>"),
                })
                .unwrap_or_default();
            println!(
                "{topic:<16} {:<11} {:<16} {payload}{}",
                entry.state,
                entry.id().unwrap_or("-"),
                entry
                    .error
                    .as_deref()
                    .map(|e| format!("  error={}", one_line(e)))
                    .unwrap_or_default(),
            );
        }
        match page.next {
            Some(next) if found < args.limit => cursor = next,
            Some(_) => {
                println!("stopped after {found} match(es), {scanned} entries scanned (--limit)");
                return Ok(());
            }
            None => break,
        }
    }
    println!("{found} match(es) in {scanned} entries");
    Ok(())
}
