//! Search: a bounded scan with a cursor over the entries of one or more
//! topics, never one long script. Each call reads at most `budget` entries
//! (pages of 500, one `LRANGE`/`ZRANGE` each) and returns where to go on,
//! so a caller streams results in over many short calls, however big the
//! queues are.
//!
//! A scan over lists that workers are draining may miss or repeat an entry
//! that moved between two pages; a search is a snapshot of nothing.

use std::fmt;
use std::str::FromStr;

use super::browse::{Entry, State, SCAN_PAGE};
use super::Broker;
use crate::{codec, Error};

/// What to look for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Needle {
    /// A job id, exactly.
    Id(String),
    /// A substring of the job id, the payload rendered as JSON or the
    /// stored error, case-insensitive.
    Text(String),
}

impl Needle {
    /// A text needle, lowercased once.
    pub fn text(text: &str) -> Needle {
        Needle::Text(text.to_lowercase())
    }

    /// Whether `entry` matches.
    pub fn matches(&self, entry: &Entry) -> bool {
        match self {
            Needle::Id(id) => entry.id() == Some(id.as_str()),
            Needle::Text(text) => {
                let found = |haystack: &str| haystack.to_lowercase().contains(text.as_str());
                entry.id().is_some_and(found)
                    || entry.error.as_deref().is_some_and(found)
                    || match &entry.envelope {
                        Some(envelope) => codec::to_json(envelope.payload())
                            .is_ok_and(|json| found(&json.to_string())),
                        None => found(&String::from_utf8_lossy(&entry.raw)),
                    }
            }
        }
    }
}

/// Where a search goes on: topic index, state index (in [`State::ALL`])
/// and offset. Written `topic.state.offset`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Index into the searched topics.
    pub topic: usize,
    /// Index into [`State::ALL`].
    pub state: usize,
    /// Entries of that state already read.
    pub offset: u64,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.topic, self.state, self.offset)
    }
}

impl FromStr for Cursor {
    type Err = String;

    fn from_str(s: &str) -> Result<Cursor, String> {
        let bad = || format!("`{s}` is not a search cursor (topic.state.offset)");
        let mut parts = s.split('.').map(str::parse::<u64>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(topic)), Some(Ok(state)), Some(Ok(offset)), None)
                if (state as usize) < State::ALL.len() && i64::try_from(offset).is_ok() =>
            {
                Ok(Cursor {
                    topic: topic as usize,
                    state: state as usize,
                    offset,
                })
            }
            _ => Err(bad()),
        }
    }
}

/// Most page reads per call, empty ones included: many empty topics and
/// states cost round trips but no entries.
const MAX_READS: usize = 64;

/// One call's results.
#[derive(Clone, Debug, Default)]
pub struct SearchPage {
    /// Matches, with the topic of each.
    pub hits: Vec<(String, Entry)>,
    /// Where to go on; `None` when everything was read.
    pub next: Option<Cursor>,
    /// Entries read by this call.
    pub scanned: usize,
}

impl Broker {
    /// Reads up to `budget` entries of `topics` from `cursor` on, in the
    /// order of [`State::ALL`] per topic, and returns those `needle`
    /// matches. It stops early, after the page that brings the hits to
    /// `max_hits` (the cursor then points just past that page), and after
    /// 64 reads however few entries they held.
    pub async fn search(
        &self,
        topics: &[String],
        needle: &Needle,
        cursor: Cursor,
        budget: usize,
        max_hits: usize,
    ) -> Result<SearchPage, Error> {
        let mut page = SearchPage::default();
        let mut at = cursor;
        let mut reads = 0;
        while at.topic < topics.len() {
            if page.scanned >= budget || page.hits.len() >= max_hits || reads == MAX_READS {
                page.next = Some(at);
                return Ok(page);
            }
            let topic = &topics[at.topic];
            let state = State::ALL[at.state];
            let want = SCAN_PAGE.min(budget - page.scanned).max(1);
            let entries = self.entries(topic, state, at.offset, want).await?;
            reads += 1;
            let read = entries.len();
            page.scanned += read;
            page.hits.extend(
                entries
                    .into_iter()
                    .filter(|e| needle.matches(e))
                    .map(|e| (topic.clone(), e)),
            );
            if read < want {
                at.offset = 0;
                at.state += 1;
                if at.state == State::ALL.len() {
                    at.state = 0;
                    at.topic += 1;
                }
            } else {
                at.offset += read as u64;
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let cursor = Cursor {
            topic: 2,
            state: 6,
            offset: 1500,
        };
        assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        for bad in [
            "",
            "1.2",
            "1.7.0",
            "1.2.3.4",
            "a.b.c",
            "1.-1.0",
            "0.0.18446744073709551615",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }
}
