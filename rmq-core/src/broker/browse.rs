//! Browsing a topic: every state as pages read straight from Redis (one
//! `LRANGE` or `ZRANGE` per page, never a whole list), and [`Locator`]s
//! that find one entry again for the job detail and the entry actions.
//!
//! Pending jobs are listed in queue order, delayed jobs by due time, leased
//! jobs by lease deadline, dead-letter and parse-error entries newest first.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::admin::{dead_job, digest, parse_error_entry};
use super::Broker;
use crate::envelope::Envelope;
use crate::keys::TopicKeys;
use crate::{Error, Priority};

/// Where an entry of a topic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting to run, in the list of its priority.
    Pending(Priority),
    /// Delayed, or waiting for a retry.
    Delayed,
    /// Leased by a worker.
    Processing,
    /// In the dead-letter queue.
    Dead,
    /// In the parse-error store.
    ParseError,
}

impl State {
    /// Every state, in the order a search scans them.
    pub const ALL: [State; 7] = [
        State::Pending(Priority::High),
        State::Pending(Priority::Normal),
        State::Pending(Priority::Low),
        State::Delayed,
        State::Processing,
        State::Dead,
        State::ParseError,
    ];

    /// Its name: `high`, `normal`, `low`, `delayed`, `processing`, `dead`,
    /// `parse_error`.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Pending(p) => p.as_str(),
            State::Delayed => "delayed",
            State::Processing => "processing",
            State::Dead => "dead",
            State::ParseError => "parse_error",
        }
    }

    /// The key that holds the state's entries.
    pub(super) fn key(self, keys: &TopicKeys) -> &str {
        match self {
            State::Pending(p) => &keys.pending[usize::from(p.as_u8())],
            State::Delayed => &keys.delayed,
            State::Processing => &keys.processing,
            State::Dead => &keys.dead,
            State::ParseError => &keys.errors,
        }
    }

    /// Whether its entries are kept newest first (the retention stores).
    fn newest_first(self) -> bool {
        matches!(self, State::Dead | State::ParseError)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<State, String> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                format!("unknown state `{s}`: use high, normal, low, delayed, processing, dead or parse_error")
            })
    }
}

/// One entry of a topic, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Where it is.
    pub state: State,
    /// The stored bytes (list element or sorted-set member).
    pub raw: Vec<u8>,
    /// Its index in its pending list, or its score (ms) elsewhere.
    pub position: u64,
    /// The job, when the entry holds an envelope rmq reads.
    pub envelope: Option<Envelope>,
    /// The error a dead-letter or parse-error entry was stored with, or why
    /// an entry cannot be read.
    pub error: Option<String>,
}

impl Entry {
    fn new(state: State, raw: Vec<u8>, position: u64) -> Entry {
        let (envelope, error) = match state {
            State::Dead => match dead_job(&raw, position as f64) {
                Ok(job) => (Some(job.envelope), Some(job.error)),
                Err(unreadable) => (None, Some(unreadable.reason)),
            },
            State::ParseError => match parse_error_entry(&raw, position as f64) {
                Ok(entry) => (entry.envelope().ok(), Some(entry.error)),
                Err(unreadable) => (None, Some(unreadable.reason)),
            },
            _ => match Envelope::parse(raw.clone()) {
                Ok(envelope) => (Some(envelope), None),
                Err(e) => (None, Some(format!("not a job envelope: {e}"))),
            },
        };
        Entry {
            state,
            raw,
            position,
            envelope,
            error,
        }
    }

    /// The job id, when the entry holds a job.
    pub fn id(&self) -> Option<&str> {
        self.envelope.as_ref().map(Envelope::id)
    }

    /// When it is due (delayed), its lease ends (processing), it died
    /// (dead) or was stored (parse error): ms since the epoch, server clock.
    pub fn at_ms(&self) -> Option<u64> {
        match self.state {
            State::Pending(_) => None,
            _ => Some(self.position),
        }
    }

    /// How to find this entry again.
    pub fn locator(&self) -> Locator {
        Locator {
            state: self.state,
            position: self.position,
            digest: digest(&self.raw),
        }
    }
}

/// Finds one entry again: its state, where it was (list index or score)
/// and a digest of its bytes. Written `state.position.digest`, e.g.
/// `dead.1764590400000.9f86d081884c7d65`, safe in a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Locator {
    /// Its state.
    pub state: State,
    /// List index or score when it was seen.
    pub position: u64,
    /// `@` and the FNV-1a digest of its bytes.
    pub digest: String,
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.state, self.position, &self.digest[1..])
    }
}

impl FromStr for Locator {
    type Err = String;

    fn from_str(s: &str) -> Result<Locator, String> {
        let bad = || format!("`{s}` is not an entry locator (state.position.digest)");
        let mut parts = s.splitn(3, '.');
        let (Some(state), Some(position), Some(hex)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        // Redis takes list offsets and scores up to i64::MAX.
        let position = position
            .parse::<u64>()
            .ok()
            .filter(|&p| i64::try_from(p).is_ok())
            .ok_or_else(bad)?;
        Ok(Locator {
            state: state.parse()?,
            position,
            digest: format!("@{}", hex.to_ascii_lowercase()),
        })
    }
}

/// How far around its last index a pending entry is looked for first:
/// pops move entries toward the head, releases push a few in front.
const NEAR: u64 = 500;
/// Entries read per call while scanning.
pub(super) const SCAN_PAGE: usize = 500;

impl Broker {
    /// Entries of `topic` in `state`, skipping `offset`, at most `limit`:
    /// one `LRANGE` or `ZRANGE` (see the module docs for the order).
    pub async fn entries(
        &self,
        topic: &str,
        state: State,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let keys = self.keys(topic);
        let key = state.key(&keys);
        let Some(last) = offset
            .checked_add(limit as u64 - 1)
            .filter(|&last| i64::try_from(last).is_ok())
        else {
            return Ok(Vec::new());
        };
        match state {
            State::Pending(_) => {
                let mut cmd = redis::cmd("LRANGE");
                cmd.arg(key).arg(offset).arg(last);
                let raw: Vec<Vec<u8>> = self.cmd("listing pending jobs", &cmd).await?;
                Ok(raw
                    .into_iter()
                    .zip(offset..)
                    .map(|(raw, index)| Entry::new(state, raw, index))
                    .collect())
            }
            _ => {
                let mut cmd = redis::cmd(if state.newest_first() {
                    "ZREVRANGE"
                } else {
                    "ZRANGE"
                });
                cmd.arg(key).arg(offset).arg(last).arg("WITHSCORES");
                let raw: Vec<(Vec<u8>, f64)> = self.cmd("listing entries", &cmd).await?;
                Ok(raw
                    .into_iter()
                    .map(|(raw, score)| Entry::new(state, raw, score.max(0.0) as u64))
                    .collect())
            }
        }
    }

    /// How many entries `topic` has in `state`.
    pub async fn depth(&self, topic: &str, state: State) -> Result<u64, Error> {
        let keys = self.keys(topic);
        let mut cmd = redis::cmd(match state {
            State::Pending(_) => "LLEN",
            _ => "ZCARD",
        });
        cmd.arg(state.key(&keys));
        self.cmd("counting entries", &cmd).await
    }

    /// The entry `locator` names, if it is still where it was: in its
    /// state, with the same bytes. A pending entry is looked for around its
    /// last index first, then through the rest of its list; a leased one,
    /// whose score moves with every lease renewal, through the leases.
    pub async fn entry(&self, topic: &str, locator: &Locator) -> Result<Option<Entry>, Error> {
        let keys = self.keys(topic);
        let key = locator.state.key(&keys);
        let found = |page: Vec<Entry>| page.into_iter().find(|e| digest(&e.raw) == locator.digest);
        match locator.state {
            State::Pending(_) => {
                let start = locator.position.saturating_sub(NEAR);
                let near = self
                    .entries(topic, locator.state, start, (2 * NEAR) as usize)
                    .await?;
                if let Some(entry) = found(near) {
                    return Ok(Some(entry));
                }
            }
            State::Processing => {}
            state => {
                let mut cmd = redis::cmd("ZRANGEBYSCORE");
                cmd.arg(key)
                    .arg(locator.position)
                    .arg(locator.position)
                    .arg("WITHSCORES");
                let raw: Vec<(Vec<u8>, f64)> = self.cmd("finding an entry", &cmd).await?;
                return Ok(found(
                    raw.into_iter()
                        .map(|(raw, score)| Entry::new(state, raw, score.max(0.0) as u64))
                        .collect(),
                ));
            }
        }
        let mut offset = 0;
        loop {
            let page = self
                .entries(topic, locator.state, offset, SCAN_PAGE)
                .await?;
            let len = page.len();
            if let Some(entry) = found(page) {
                return Ok(Some(entry));
            }
            if len < SCAN_PAGE {
                return Ok(None);
            }
            offset += SCAN_PAGE as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_round_trip_and_refuse_garbage() {
        let locator = Locator {
            state: State::Pending(Priority::Low),
            position: 42,
            digest: "@00ff00ff00ff00ff".into(),
        };
        assert_eq!(locator.to_string(), "low.42.00ff00ff00ff00ff");
        assert_eq!(locator.to_string().parse::<Locator>(), Ok(locator));
        for bad in [
            "",
            "dead",
            "dead.1",
            "dead.x.00ff00ff00ff00ff",
            "dead.1.00ff",
            "dead.1.zzff00ff00ff00ff",
            "normal.18446744073709551615.00ff00ff00ff00ff",
            "gone.1.00ff00ff00ff00ff",
        ] {
            assert!(bad.parse::<Locator>().is_err(), "{bad}");
        }
        assert_eq!("parse_error".parse::<State>(), Ok(State::ParseError));
    }
}
