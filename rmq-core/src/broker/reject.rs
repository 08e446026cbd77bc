//! Reject (`lua/reject.lua`): a leased job whose payload does not decode
//! goes to the parse-error store.

use super::Broker;
use crate::envelope::Envelope;
use crate::{scripts, Error};

impl Broker {
    /// Moves the leased `job`, whose payload does not decode, to the
    /// parse-error store. Returns false if the lease was lost.
    pub async fn reject(&self, topic: &str, job: &Envelope, error: &str) -> Result<bool, Error> {
        self.reject_raw(topic, job.as_bytes(), error).await
    }

    pub(super) async fn reject_raw(
        &self,
        topic: &str,
        raw: &[u8],
        error: &str,
    ) -> Result<bool, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::REJECT.prepare_invoke();
        invocation
            .key(&keys.processing)
            .key(&keys.errors)
            .key(&keys.ids)
            .key(&keys.index)
            .key(&keys.locks)
            .arg(raw)
            .arg(error)
            .arg(self.inner.errors_max);
        let moved: i64 = self.run("reject", &invocation).await?;
        Ok(moved == 1)
    }
}
