//! Standalone Redis (`redis://`, `rediss://`, unix sockets): every
//! connection goes to the one server of the URL.

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError, RedisResult};

use super::mask_password;
use crate::{Config, Error};

/// The standalone deployment: a client for the server.
#[derive(Clone)]
pub(crate) struct Standalone {
    client: redis::Client,
}

impl Standalone {
    pub(super) fn new(config: &Config) -> Result<Standalone, Error> {
        Ok(Standalone {
            client: client(config)?,
        })
    }

    pub(super) async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        self.client
            .get_multiplexed_async_connection_with_config(config)
            .await
    }
}

/// The `redis::Client` for `config`, with the database and credential
/// overrides and the TLS settings applied.
fn client(config: &Config) -> Result<redis::Client, Error> {
    let masked = mask_password(&config.redis_url);
    let password_hint = if config.redis_url.contains('@') {
        " (a password in the URL must be percent-encoded: `/` as %2F, `#` as %23, `?` as %3F, `@` as %40, `:` as %3A; or set REDIS_PASSWORD instead)"
    } else {
        ""
    };
    let bad_url = |e: RedisError| {
        Error::Config {
        option: "redis_url",
        rule: format!(
            "is not a valid Redis URL ({e}); expected `redis://[user:password@]host:port[/db]`{}{password_hint}; got `{masked}`",
            if cfg!(feature = "tls") { " or `rediss://...`" } else { "" }
        ),
    }
    };
    let tls = config.redis_url.starts_with("rediss://");
    if tls && !cfg!(feature = "tls") {
        return Err(Error::Config {
            option: "redis_url",
            rule: format!(
                "uses TLS (`rediss://`), but this build of rmq has no TLS support: enable the `tls` feature; got `{masked}`"
            ),
        });
    }
    let client = redis::Client::open(config.redis_url.as_str()).map_err(bad_url)?;
    let info = client.get_connection_info().clone();
    let mut redis = info.redis_settings().clone();
    if let Some(db) = config.redis_db {
        redis = redis.set_db(db);
    }
    if let Some(user) = &config.redis_username {
        redis = redis.set_username(user);
    }
    if let Some(password) = &config.redis_password {
        redis = redis.set_password(password);
    }
    let info = info.set_redis_settings(redis);
    #[cfg(feature = "tls")]
    if tls {
        return super::tls::client(config, info, &masked);
    }
    redis::Client::open(info).map_err(bad_url)
}
