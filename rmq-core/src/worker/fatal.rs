//! Errors no retry can fix: an ACL denial met by any loop stops the whole
//! worker with that error, instead of every loop retrying it for ever.

use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::{Config, Error};

#[derive(Default)]
pub(super) struct Fatal {
    token: CancellationToken,
    error: Mutex<Option<Error>>,
}

impl Fatal {
    /// Records `error` and stops the worker if it is a permission denial;
    /// returns whether it was.
    pub(super) fn raise(&self, config: &Config, error: &Error) -> bool {
        let Some(denied) = crate::broker::denied(config, error) else {
            return false;
        };
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            tracing::error!(error = %denied, "stopping the worker: Redis denies a command it needs");
            *slot = Some(denied);
        }
        self.token.cancel();
        true
    }

    /// Completes once a fatal error was raised.
    pub(super) async fn raised(&self) {
        self.token.cancelled().await;
    }

    /// The fatal error, if one was raised.
    pub(super) fn take(&self) -> Option<Error> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
