//! Fail (`lua/fail.lua`): a failed attempt is retried later or
//! dead-lettered.

use std::time::Duration;

use super::{flag, ms, Broker};
use crate::envelope::Envelope;
use crate::{scripts, Error};

/// How a failed attempt should be handled.
#[derive(Clone, Debug)]
pub struct Failure<'a> {
    /// The handler's error, kept with the job if it is dead-lettered.
    pub error: &'a str,
    /// Skip the remaining retries.
    pub permanent: bool,
    /// Delay before the retry (ignored when the job dies).
    pub retry_delay: Duration,
    /// The handler stopped for a cancellation: the job ends cancelled,
    /// never retried.
    pub cancelled: bool,
}

/// What became of a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Scheduled again after the retry delay.
    Retrying,
    /// Moved to the dead-letter queue (or dropped, counted, when it is off).
    Dead,
    /// Ended as cancelled (asked to cancel while it ran, or the handler
    /// returned [`crate::TaskError::cancelled`]): never retried.
    Cancelled,
    /// The lease was no longer ours: the job had been recovered and handed
    /// elsewhere; nothing changed.
    LeaseLost,
    /// Rate limited upstream: delayed again with its attempt number
    /// unchanged ([`Broker::redelay`]).
    Redelayed,
}

impl Broker {
    /// Records a failed attempt: retry later or dead-letter.
    pub async fn fail(
        &self,
        topic: &str,
        job: &Envelope,
        failure: &Failure<'_>,
    ) -> Result<FailOutcome, Error> {
        self.run_fail(topic, job, failure, None).await
    }

    /// Gives a leased job back to the delayed set, due in `after`, with its
    /// attempt number unchanged ([`TaskError::rate_limited`](crate::TaskError::rate_limited)):
    /// [`FailOutcome::Redelayed`], [`FailOutcome::Cancelled`] when it was
    /// asked to cancel, or [`FailOutcome::LeaseLost`].
    pub async fn redelay(
        &self,
        topic: &str,
        job: &Envelope,
        after: Duration,
    ) -> Result<FailOutcome, Error> {
        let failure = Failure {
            error: "rate limited",
            permanent: false,
            retry_delay: Duration::ZERO,
            cancelled: false,
        };
        self.run_fail(topic, job, &failure, Some(after)).await
    }

    /// One `fail.lua` call; `redelay`: re-delay without counting an attempt.
    async fn run_fail(
        &self,
        topic: &str,
        job: &Envelope,
        failure: &Failure<'_>,
        redelay: Option<Duration>,
    ) -> Result<FailOutcome, Error> {
        let keys = self.keys(topic);
        let mut invocation = scripts::FAIL.prepare_invoke();
        invocation
            .key(&keys.processing)
            .key(&keys.delayed)
            .key(&keys.dead)
            .key(&keys.stats)
            .key(&keys.ids)
            .key(&keys.wake)
            .key(&keys.index)
            .key(&keys.cancel)
            .key(&keys.locks)
            .arg(job.as_bytes())
            .arg(failure.error)
            .arg(flag(failure.permanent))
            .arg(ms(failure.retry_delay))
            .arg(flag(self.inner.dead_letter))
            .arg(self.inner.dead_max)
            .arg(flag(failure.cancelled))
            .arg(flag(self.inner.keep_cancelled));
        if let Some(after) = redelay {
            invocation.arg(ms(after));
        }
        let code: i64 = self.run("fail", &invocation).await?;
        match code {
            0 => Ok(FailOutcome::Retrying),
            1 => Ok(FailOutcome::Dead),
            2 => Ok(FailOutcome::LeaseLost),
            3 => Ok(FailOutcome::Cancelled),
            4 => Ok(FailOutcome::Redelayed),
            other => Err(Error::Corrupt {
                op: "fail",
                detail: format!("the fail script returned {other}"),
            }),
        }
    }
}
