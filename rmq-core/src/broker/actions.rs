//! Actions on chosen entries (`lua/remove.lua`) and on whole states
//! (`lua/purge.lua`): what the dashboard's buttons do.
//!
//! Entries are named by [`Locator`]s, found again by their exact bytes and
//! changed by one script call that skips any entry that is gone by then (a
//! job that started or moved meanwhile is never touched).

use futures_util::future::try_join_all;

use super::admin::Store;
use super::browse::{Entry, Locator, State};
use super::{Broker, Retried};
use crate::{scripts, Error};

/// What an action on chosen entries did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changed {
    /// Entries deleted or moved.
    pub done: usize,
    /// Entries left alone: no longer where they were (they ran or moved
    /// meanwhile), or (run now) not a job rmq can read.
    pub skipped: usize,
}

/// Entries removed per purge call: a big list is deleted over several
/// short calls instead of stalling Redis in one.
const PURGE_SLICE: usize = 1000;

impl Broker {
    /// The entries `locators` name that are still there, in order.
    async fn resolve(&self, topic: &str, locators: &[Locator]) -> Result<Vec<Entry>, Error> {
        let found = try_join_all(locators.iter().map(|l| self.entry(topic, l))).await?;
        Ok(found.into_iter().flatten().collect())
    }

    /// Deletes the pending, delayed, dead-letter or parse-error entries
    /// `locators` name. A deleted job's explicit id is free again. Leased
    /// (running) jobs cannot be deleted.
    pub async fn delete_entries(
        &self,
        topic: &str,
        locators: &[Locator],
    ) -> Result<Changed, Error> {
        if locators.iter().any(|l| l.state == State::Processing) {
            return Err(running("delete"));
        }
        let entries = self.resolve(topic, locators).await?;
        self.change(topic, "delete", &entries, locators.len()).await
    }

    /// Moves the delayed jobs `locators` name to the back of their pending
    /// lists, to run as soon as a worker is free.
    pub async fn run_now(&self, topic: &str, locators: &[Locator]) -> Result<Changed, Error> {
        if let Some(l) = locators.iter().find(|l| l.state != State::Delayed) {
            return Err(Error::NotAllowed {
                action: "run now",
                state: l.state.as_str(),
                hint: "only delayed jobs (and retries waiting for their time) can be run now",
            });
        }
        let mut entries = self.resolve(topic, locators).await?;
        entries.retain(|e| e.envelope.is_some());
        self.change(topic, "run", &entries, locators.len()).await
    }

    /// Re-enqueues the dead-letter or parse-error entries `locators` name
    /// as new runs (attempt 1, at the back of their priority lists).
    /// Entries that cannot be retried stay, counted as in
    /// [`Broker::retry_all_dead`]; entries gone meanwhile are counted in
    /// [`Retried::missing`].
    pub async fn retry_entries(&self, topic: &str, locators: &[Locator]) -> Result<Retried, Error> {
        if let Some(l) = locators
            .iter()
            .find(|l| !matches!(l.state, State::Dead | State::ParseError))
        {
            return Err(Error::NotAllowed {
                action: "retry",
                state: l.state.as_str(),
                hint: "only dead-letter and parse-error entries can be retried",
            });
        }
        let mut report = Retried::default();
        for (store, state) in [
            (Store::Dead, State::Dead),
            (Store::Errors, State::ParseError),
        ] {
            let chosen: Vec<Locator> = locators
                .iter()
                .filter(|l| l.state == state)
                .cloned()
                .collect();
            if chosen.is_empty() {
                continue;
            }
            let entries = self.resolve(topic, &chosen).await?;
            report.missing += chosen.len() - entries.len();
            let (movable, unreadable): (Vec<Vec<u8>>, Vec<Vec<u8>>) = entries
                .into_iter()
                .map(|e| e.raw)
                .partition(|raw| store.retryable(raw));
            report.unreadable += unreadable.len();
            if movable.is_empty() {
                continue;
            }
            let call = self.retry_members(topic, store, &movable, false).await?;
            report.moved += call.moved;
            report.unreadable += call.invalid;
            // What the script neither moved nor kept was gone by then.
            report.missing += movable
                .len()
                .saturating_sub(call.moved + call.busy.len() + call.invalid);
            report.busy.extend(call.busy);
        }
        Ok(report)
    }

    /// Deletes the entries of `topic` in `state`, as many as there were
    /// when the call started, from the front (the oldest of a retention
    /// store); returns how many. They go 1,000 entries per script call,
    /// freeing their explicit ids and index records, so while workers take jobs and producers
    /// add some a few added meanwhile may go too: [pause](Broker::pause)
    /// the topic first for an exact purge. Leased (running) jobs cannot be
    /// purged.
    pub async fn purge_state(&self, topic: &str, state: State) -> Result<u64, Error> {
        let kind = match state {
            State::Processing => return Err(running("purge")),
            State::Pending(_) => "l",
            State::Delayed => "z",
            State::Dead | State::ParseError => "e",
        };
        let keys = self.keys(topic);
        let total = self.depth(topic, state).await?;
        let mut purged = 0;
        while purged < total {
            let slice = PURGE_SLICE.min((total - purged) as usize);
            let mut invocation = scripts::PURGE.prepare_invoke();
            invocation
                .key(state.key(&keys))
                .key(&keys.ids)
                .key(&keys.index)
                .key(&keys.locks)
                .arg(kind)
                .arg(slice);
            let gone: u64 = self.run("purge", &invocation).await?;
            if gone == 0 {
                break;
            }
            purged += gone;
        }
        Ok(purged)
    }

    /// One `remove.lua` call over `entries`; `asked` entries were named.
    async fn change(
        &self,
        topic: &str,
        action: &str,
        entries: &[Entry],
        asked: usize,
    ) -> Result<Changed, Error> {
        if entries.is_empty() {
            return Ok(Changed {
                done: 0,
                skipped: asked,
            });
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::REMOVE.prepare_invoke();
        invocation
            .key(&keys.pending[0])
            .key(&keys.pending[1])
            .key(&keys.pending[2])
            .key(&keys.delayed)
            .key(&keys.dead)
            .key(&keys.errors)
            .key(&keys.ids)
            .key(&keys.wake)
            .key(&keys.paused)
            .key(&keys.index)
            .key(&keys.locks)
            .arg(action);
        for entry in entries {
            let index = match entry.state {
                State::Pending(p) => 1 + usize::from(p.as_u8()),
                State::Delayed => 4,
                State::Dead => 5,
                State::ParseError => 6,
                State::Processing => return Err(running("delete")),
            };
            invocation.arg(index).arg(entry.raw.as_slice());
        }
        let done: usize = self.run("changing entries", &invocation).await?;
        Ok(Changed {
            done,
            skipped: asked - done,
        })
    }
}

/// The refusal to delete a leased job.
fn running(action: &'static str) -> Error {
    Error::NotAllowed {
        action,
        state: State::Processing.as_str(),
        hint: "a running job cannot be deleted; wait until it ends, or stop its worker",
    }
}
