//! The record of published events: a publish with an explicit event id
//! leaves `P:event:<event>:<id>` behind once every subscriber has its job,
//! so a publish again with that id (a retry after a timeout, even once the
//! jobs have run) enqueues nothing.

use std::time::Duration;

use super::Broker;
use crate::Error;

/// How long a published event's record is kept.
pub const EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl Broker {
    /// Whether event `name` was published with the id `id` (and every
    /// subscriber got its job) within [`EVENT_RETENTION`].
    pub async fn event_published(&self, name: &str, id: &str) -> Result<bool, Error> {
        let key = crate::keys::event_key(self.prefix(), name, id);
        self.cmd("event", redis::cmd("EXISTS").arg(key)).await
    }

    /// Records that event `name` with the id `id` reached every subscriber.
    pub async fn record_event(&self, name: &str, id: &str) -> Result<(), Error> {
        let key = crate::keys::event_key(self.prefix(), name, id);
        self.cmd(
            "event",
            redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("PX")
                .arg(super::ms(EVENT_RETENTION)),
        )
        .await
    }
}
