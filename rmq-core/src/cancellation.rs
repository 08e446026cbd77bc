//! The cancellation signal of one running job, as cheap as a flag for the
//! jobs nobody cancels: one allocation and atomic operations per job; a
//! [`CancellationToken`] only for handlers that ask for one.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

/// Set when a running job is asked to cancel ([`crate::Client::cancel`],
/// `worker cancel`). Clones share the signal. See
/// [`JobContext::cancelled`](crate::JobContext::cancelled).
#[derive(Clone, Default)]
pub struct Cancellation(Arc<Signal>);

#[derive(Default)]
struct Signal {
    cancelled: AtomicBool,
    /// Made on first use of [`Cancellation::token`] or
    /// [`Cancellation::cancelled`].
    token: OnceLock<CancellationToken>,
}

impl Cancellation {
    /// A signal not yet set.
    pub fn new() -> Cancellation {
        Cancellation::default()
    }

    /// Sets the signal: wakes every [`cancelled`](Self::cancelled) and
    /// cancels the [`token`](Self::token).
    pub fn cancel(&self) {
        // SeqCst pairs with `token`: whichever of the two runs second sees
        // the other's write, so a token made concurrently is still cancelled.
        self.0.cancelled.store(true, Ordering::SeqCst);
        if let Some(token) = self.0.token.get() {
            token.cancel();
        }
    }

    /// Whether the signal is set.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Completes when the signal is set (at once if it is).
    pub async fn cancelled(&self) {
        if self.is_cancelled() {
            return;
        }
        self.token().cancelled().await;
    }

    /// A [`CancellationToken`] cancelled with this signal, for code that
    /// takes one (child tokens, `tokio_util` helpers).
    pub fn token(&self) -> CancellationToken {
        let token = self.0.token.get_or_init(CancellationToken::new).clone();
        if self.is_cancelled() {
            token.cancel();
        }
        token
    }
}

impl fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellation")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cancel_wakes_a_waiter_and_cancels_tokens_made_before_and_after() {
        let signal = Cancellation::new();
        let before = signal.token();
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move { signal.cancelled().await }
        });
        assert!(!signal.is_cancelled());
        signal.cancel();
        waiter.await.unwrap();
        assert!(signal.is_cancelled());
        assert!(before.is_cancelled());
        assert!(signal.token().is_cancelled());
    }
}
