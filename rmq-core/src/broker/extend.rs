//! Extend (`lua/extend.lua`): renews the leases of held jobs.

use std::time::Duration;

use super::{ms, Broker};
use crate::envelope::Envelope;
use crate::{scripts, Error};

impl Broker {
    /// Extends the leases of `jobs` to `lease` from now; returns the indexes
    /// whose lease was lost.
    pub async fn extend(
        &self,
        topic: &str,
        jobs: &[Envelope],
        lease: Duration,
    ) -> Result<Vec<usize>, Error> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::EXTEND.prepare_invoke();
        invocation.key(&keys.processing).arg(ms(lease).max(1));
        for job in jobs {
            invocation.arg(job.as_bytes());
        }
        self.run("extend", &invocation).await
    }
}
