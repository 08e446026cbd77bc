//! What a dashboard allows and whom it lets in.

use std::fmt;
use std::net::SocketAddr;

/// How visitors prove who they are.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// A shared secret, sent as `Authorization: Bearer <token>`, or once as
    /// `?token=<token>`, which logs the browser in with a session cookie.
    Token(String),
    /// HTTP basic auth: the browser asks for a user and password.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl Auth {
    /// Bearer-token auth.
    pub fn token(token: impl Into<String>) -> Auth {
        Auth::Token(token.into())
    }

    /// Basic auth with one user.
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }
}

/// Never prints a secret.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Token(_) => f.write_str("Token(***)"),
            Auth::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"***")
                .finish(),
        }
    }
}

/// Settings of [`router`](crate::router).
///
/// ```
/// let options = rmq_web::Options::new()
///     .read_only(true)
///     .auth(rmq_web::Auth::token("s3cret-token"))
///     .title("orders queue");
/// assert!(format!("{options:?}").contains("***"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// No actions: every action route answers 403 and pages show no
    /// buttons.
    pub read_only: bool,
    /// Who may look; `None`: anyone who reaches the address (keep it on
    /// loopback, see [`check_listen`]).
    pub auth: Option<Auth>,
    /// Shown in the page title and header (default `rmq`).
    pub title: String,
    /// Also serve the queue-wide Prometheus metrics on `/metrics`, behind
    /// the same auth (default off).
    pub metrics: bool,
    /// Without [`Options::auth`], the host names requests may name besides
    /// `localhost`, `127.0.0.1` and `[::1]` (any port). Others are refused,
    /// so a web page whose name an attacker points at 127.0.0.1 (DNS
    /// rebinding) cannot read or use a dashboard without auth. Add the
    /// name of an app that puts its own auth in front of the router.
    pub hosts: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_only: false,
            auth: None,
            title: "rmq".to_owned(),
            metrics: false,
            hosts: Vec::new(),
        }
    }
}

impl Options {
    /// Actions allowed, no auth, title `rmq`, no `/metrics`.
    pub fn new() -> Options {
        Options::default()
    }

    /// Sets [`Options::read_only`].
    pub fn read_only(mut self, read_only: bool) -> Options {
        self.read_only = read_only;
        self
    }

    /// Sets [`Options::auth`].
    pub fn auth(mut self, auth: Auth) -> Options {
        self.auth = Some(auth);
        self
    }

    /// Sets [`Options::title`].
    pub fn title(mut self, title: impl Into<String>) -> Options {
        self.title = title.into();
        self
    }

    /// Sets [`Options::metrics`].
    pub fn metrics(mut self, metrics: bool) -> Options {
        self.metrics = metrics;
        self
    }

    /// Adds a host name to [`Options::hosts`].
    pub fn host(mut self, name: impl Into<String>) -> Options {
        self.hosts.push(name.into().to_ascii_lowercase());
        self
    }

    /// Reads `RMQ_WEB_TOKEN` (bearer-token auth), or `RMQ_WEB_USER` and
    /// `RMQ_WEB_PASSWORD` (basic auth), and `RMQ_WEB_READ_ONLY` (`1`,
    /// `true`, `yes` / `0`, `false`, `no`). Fails on an empty secret, a
    /// user without a password (or the reverse), both kinds of auth, or a
    /// flag that is not a boolean.
    pub fn from_env() -> Result<Options, String> {
        Options::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Options, String> {
        let token = var("RMQ_WEB_TOKEN");
        let user = var("RMQ_WEB_USER");
        let password = var("RMQ_WEB_PASSWORD");
        let auth = match (token, user, password) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(
                    "set either RMQ_WEB_TOKEN or RMQ_WEB_USER and RMQ_WEB_PASSWORD, not both"
                        .to_owned(),
                )
            }
            (Some(token), None, None) if token.is_empty() => {
                return Err("RMQ_WEB_TOKEN is empty: set a long random token".to_owned())
            }
            (Some(token), None, None) => Some(Auth::Token(token)),
            (None, Some(user), Some(password)) if user.is_empty() || password.is_empty() => {
                return Err("RMQ_WEB_USER and RMQ_WEB_PASSWORD must not be empty".to_owned())
            }
            (None, Some(user), Some(password)) => Some(Auth::Basic { user, password }),
            (None, Some(_), None) => {
                return Err("RMQ_WEB_USER is set but RMQ_WEB_PASSWORD is not".to_owned())
            }
            (None, None, Some(_)) => {
                return Err("RMQ_WEB_PASSWORD is set but RMQ_WEB_USER is not".to_owned())
            }
            (None, None, None) => None,
        };
        let read_only = match var("RMQ_WEB_READ_ONLY").as_deref().map(str::trim) {
            None | Some("") => false,
            Some(v) if ["1", "true", "yes", "on"].contains(&v.to_ascii_lowercase().as_str()) => {
                true
            }
            Some(v) if ["0", "false", "no", "off"].contains(&v.to_ascii_lowercase().as_str()) => {
                false
            }
            Some(v) => {
                return Err(format!(
                    "RMQ_WEB_READ_ONLY is `{v}`: use 1, true, yes, 0, false or no"
                ))
            }
        };
        Ok(Options {
            read_only,
            auth,
            ..Options::default()
        })
    }
}

/// Refuses to serve the dashboard on an address other hosts can reach
/// unless [`Options::auth`] is set: without it anyone on the network could
/// look at the jobs and, unless read-only, act on the workers.
///
/// ```
/// use rmq_web::{check_listen, Auth, Options};
/// assert!(check_listen("127.0.0.1:9090".parse().unwrap(), &Options::new()).is_ok());
/// assert!(check_listen("0.0.0.0:9090".parse().unwrap(), &Options::new()).is_err());
/// let auth = Options::new().auth(Auth::token("s3cret-token"));
/// assert!(check_listen("0.0.0.0:9090".parse().unwrap(), &auth).is_ok());
/// ```
pub fn check_listen(addr: SocketAddr, options: &Options) -> Result<(), String> {
    let empty = match &options.auth {
        Some(Auth::Token(token)) => token.is_empty(),
        Some(Auth::Basic { user, password }) => user.is_empty() || password.is_empty(),
        None => false,
    };
    if empty {
        return Err(
            "the dashboard's auth has an empty secret, which anyone could send: \
             set a long random token, or a user name and a password"
                .to_owned(),
        );
    }
    if addr.ip().is_loopback() || options.auth.is_some() {
        return Ok(());
    }
    Err(format!(
        "refusing to serve the dashboard on {addr} without auth: other hosts could reach it. \
         Listen on 127.0.0.1 (and reach it through an SSH tunnel or a proxy), or set \
         RMQ_WEB_TOKEN (a long random token), or RMQ_WEB_USER and RMQ_WEB_PASSWORD"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Result<Options, String> {
        Options::from_vars(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn reads_the_environment() {
        assert_eq!(vars(&[]).unwrap(), Options::new());
        let token = vars(&[("RMQ_WEB_TOKEN", "t0k"), ("RMQ_WEB_READ_ONLY", "yes")]).unwrap();
        assert_eq!(token.auth, Some(Auth::token("t0k")));
        assert!(token.read_only);
        let basic = vars(&[("RMQ_WEB_USER", "ops"), ("RMQ_WEB_PASSWORD", "pw")]).unwrap();
        assert_eq!(basic.auth, Some(Auth::basic("ops", "pw")));
        assert!(!basic.read_only);
        for bad in [
            &[("RMQ_WEB_TOKEN", "")][..],
            &[("RMQ_WEB_USER", "ops")],
            &[("RMQ_WEB_PASSWORD", "pw")],
            &[("RMQ_WEB_TOKEN", "t"), ("RMQ_WEB_USER", "ops")],
            &[("RMQ_WEB_READ_ONLY", "maybe")],
        ] {
            assert!(vars(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!(
            "{:?} {:?}",
            Options::new().auth(Auth::token("tok-secret")),
            Auth::basic("ops", "pw-secret")
        );
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("ops"), "{text}");
    }

    #[test]
    fn non_loopback_needs_auth() {
        let open = Options::new();
        for addr in ["127.0.0.1:1", "[::1]:1"] {
            check_listen(addr.parse().unwrap(), &open).unwrap();
        }
        let err = check_listen("0.0.0.0:9090".parse().unwrap(), &open).unwrap_err();
        assert!(err.contains("RMQ_WEB_TOKEN"), "{err}");
        check_listen(
            "10.0.0.1:9090".parse().unwrap(),
            &open.auth(Auth::token("x")),
        )
        .unwrap();
    }
}
