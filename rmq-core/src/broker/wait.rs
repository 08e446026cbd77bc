//! Blocking waits: an idle worker blocks on the wake-up lists of its
//! topics, on a dedicated connection, until an enqueue wakes it.

use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::{connection, Broker};
use crate::Error;

/// The dedicated connection of blocking waits, and the deployment's
/// generation when it was opened.
pub(super) struct Dedicated {
    conn: MultiplexedConnection,
    generation: u64,
}

/// Clears the waiting connection when dropped before `done` is set.
struct DropConnUnlessDone<'a> {
    slot: &'a mut Option<Dedicated>,
    done: bool,
}

impl Drop for DropConnUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            *self.slot = None;
        }
    }
}

/// Extra time a blocking wait allows Redis beyond its own timeout before
/// the connection is considered dead.
const WAIT_SLACK: Duration = Duration::from_secs(3);

impl Broker {
    /// Blocks on a dedicated connection until an enqueue wakes one of
    /// `topics` or `timeout` passes. True when woken.
    ///
    /// Concurrent calls on one broker (and its clones) take turns on the
    /// dedicated connection.
    pub async fn wait(&self, topics: &[String], timeout: Duration) -> Result<bool, Error> {
        if topics.is_empty() {
            tokio::time::sleep(timeout).await;
            return Ok(false);
        }
        let mut guard = self.inner.wait_conn.lock().await;
        // Dropped before BLPOP answers (the caller gave up waiting), the
        // connection is closed, so Redis forgets the BLPOP instead of handing
        // it a wake-up token meant for another worker.
        let mut slot = DropConnUnlessDone {
            slot: &mut guard,
            done: false,
        };
        let deployment = &self.inner.deployment;
        // A connection opened before a master switch goes to the old master.
        if slot
            .slot
            .as_ref()
            .is_some_and(|d| d.generation != deployment.generation())
        {
            *slot.slot = None;
        }
        let dedicated = match slot.slot.as_mut() {
            Some(dedicated) => dedicated,
            None => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connection::CONNECT_TIMEOUT))
                    .set_response_timeout(None);
                let generation = deployment.generation();
                let conn = deployment
                    .connect(&config)
                    .await
                    .map_err(Error::redis("wait"))?;
                slot.slot.insert(Dedicated { conn, generation })
            }
        };
        let generation = dedicated.generation;
        let conn = &mut dedicated.conn;
        let mut cmd = redis::cmd("BLPOP");
        for topic in topics {
            cmd.arg(&self.keys(topic).wake);
        }
        // BLPOP takes seconds with decimals; 0 would block for ever.
        cmd.arg(format!("{:.3}", timeout.as_secs_f64().max(0.001)));
        let watchdog = timeout + WAIT_SLACK;
        let answer = tokio::select! {
            answer = tokio::time::timeout(
                watchdog,
                cmd.query_async::<Option<(Vec<u8>, Vec<u8>)>>(conn),
            ) => answer,
            // A master switch: the guard drops the connection to the old
            // master, and the caller looks again (on the new one).
            () = deployment.switched_since(generation) => return Ok(false),
        };
        // On an error the guard drops the connection; the next wait opens a
        // new one.
        match answer {
            Ok(Ok(popped)) => {
                slot.done = true;
                Ok(popped.is_some())
            }
            Ok(Err(e)) => Err(Error::Redis {
                op: "wait",
                source: e,
            }),
            Err(_) => Err(Error::Timeout {
                op: "wait",
                after: watchdog,
            }),
        }
    }
}
