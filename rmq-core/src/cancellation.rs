//! The cancellation signal of one running job, as cheap as a flag for the
//! jobs nobody cancels: atomic operations per job (a worker's runner reuses
//! its signal's allocation); a [`CancellationToken`] only for handlers that
//! ask for one.

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

    /// Makes this a signal not yet set: resets it in place when no clone
    /// of it is left, else replaces it with a new one.
    pub(crate) fn renew(&mut self) {
        match Arc::get_mut(&mut self.0) {
            Some(signal) => *signal = Signal::default(),
            None => *self = Cancellation::new(),
        }
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

    #[test]
    fn renew_resets_an_unshared_signal_and_never_one_a_clone_still_sees() {
        let mut signal = Cancellation::new();
        signal.cancel();
        signal.renew();
        assert!(!signal.is_cancelled());
        assert!(!signal.token().is_cancelled());

        let kept = signal.clone();
        kept.cancel();
        signal.renew();
        assert!(!signal.is_cancelled());
        assert!(kept.is_cancelled(), "a held copy keeps what it saw");
        signal.cancel();
        assert!(kept.is_cancelled());
        kept.0.cancelled.store(false, Ordering::SeqCst);
        assert!(signal.is_cancelled(), "the two no longer share a signal");
    }
}
