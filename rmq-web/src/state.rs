//! What every handler shares: the client, the options and the secrets of
//! this router.

use std::sync::Arc;

use rmq::{Broker, Client};

use crate::Options;

/// 32 random bytes, made once per router.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    /// A fresh secret from the OS random number generator.
    pub(crate) fn random() -> Secret {
        let mut bytes = [0u8; 32];
        // The OS generator fails only on a broken system; a dashboard with
        // guessable secrets would be worse than none.
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        Secret(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// As 64 hex digits.
    pub(crate) fn hex(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this secret, compared in constant time.
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), candidate.as_bytes())
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) options: Options,
    /// The CSRF token of every page this router renders.
    pub(crate) csrf: Secret,
    /// The value of the session cookie a `?token=` login sets.
    pub(crate) session: Secret,
}

pub(crate) type AppState = Arc<Shared>;

impl Shared {
    /// The client's Redis broker, or why there is none.
    pub(crate) fn broker(&self) -> Result<&Broker, String> {
        self.client.broker().ok_or_else(|| {
            "this client has no Redis connection (a fake or inline client): \
             give the dashboard a client from Client::connect"
                .to_owned()
        })
    }
}
