//! Extend (`lua/extend.lua`): renews the leases of held jobs and reads the
//! cancellation requests for them.

use std::time::Duration;

use super::{ms, Broker};
use crate::envelope::Envelope;
use crate::{scripts, Error};

/// The result of one extension call, as indexes into the jobs given.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Extended {
    /// Jobs whose lease was lost.
    pub lost: Vec<usize>,
    /// Held jobs asked to cancel ([`Broker::cancel`]).
    pub cancel: Vec<usize>,
}

impl Broker {
    /// Extends the leases of `jobs` to `lease` from now.
    pub async fn extend(
        &self,
        topic: &str,
        jobs: &[Envelope],
        lease: Duration,
    ) -> Result<Extended, Error> {
        if jobs.is_empty() {
            return Ok(Extended::default());
        }
        let keys = self.keys(topic);
        let mut invocation = scripts::EXTEND.prepare_invoke();
        invocation
            .key(&keys.processing)
            .key(&keys.cancel)
            .arg(ms(lease).max(1));
        for job in jobs {
            invocation.arg(job.as_bytes());
        }
        let (lost, cancel) = self.run("extend", &invocation).await?;
        Ok(Extended { lost, cancel })
    }
}
