//! Blocking waits: an idle worker blocks on the wake-up lists of its
//! topics, on a dedicated connection, until an enqueue wakes it.
//!
//! On a cluster each topic's wake-up list lives on its own slot, and a
//! BLPOP over several slots is refused (CROSSSLOT) even when one node owns
//! them all; a blocked command also holds up everything behind it on its
//! connection. So a cluster wait is one BLPOP per topic, each on a
//! dedicated cluster connection of its own, which routes it to the node
//! owning the topic's slot and follows `MOVED` (a reshard unblocks it with
//! a redirection) and failovers (the slot map is refreshed).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::future::{join_all, select_all, FutureExt};
use redis::cluster_async::ClusterConnection;

use super::{connection, Broker};
use crate::Error;

/// The dedicated connection of blocking waits, and the deployment's
/// generation when it was opened.
pub(super) struct Dedicated {
    conn: connection::Connection,
    generation: u64,
}

/// The dedicated connections of a cluster's blocking waits, one per topic.
pub(super) type PerTopic = HashMap<String, ClusterConnection>;

/// Clears the per-topic connections when dropped before `done` is set.
struct DropAllUnlessDone<'a> {
    conns: &'a mut PerTopic,
    done: bool,
}

impl Drop for DropAllUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.conns.clear();
        }
    }
}

type Popped = Option<(Vec<u8>, Vec<u8>)>;

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
        if let Some(cluster) = self.inner.deployment.cluster() {
            return self.wait_per_topic(cluster, topics, timeout).await;
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
        cmd.arg(blpop_timeout(timeout));
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

/// BLPOP takes seconds with decimals; 0 would block for ever.
fn blpop_timeout(timeout: Duration) -> String {
    format!("{:.3}", timeout.as_secs_f64().max(0.001))
}

impl Broker {
    /// [`Broker::wait`] on a cluster: one BLPOP per topic, each on its own
    /// connection. The first wake-up ends the wait; the other BLPOPs are
    /// abandoned with their connections (so Redis forgets them). When they
    /// all time out, the connections are kept for the next wait.
    async fn wait_per_topic(
        &self,
        cluster: &connection::Cluster,
        topics: &[String],
        timeout: Duration,
    ) -> Result<bool, Error> {
        let mut guard = self.inner.wait_topics.lock().await;
        let mut slot = DropAllUnlessDone {
            conns: &mut guard,
            done: false,
        };
        for topic in topics {
            if !slot.conns.contains_key(topic) {
                let conn = cluster
                    .connect_blocking()
                    .await
                    .map_err(Error::redis("wait"))?;
                slot.conns.insert(topic.clone(), conn);
            }
        }
        let seconds = blpop_timeout(timeout);
        let waits = topics.iter().map(|topic| {
            let mut conn = slot.conns[topic].clone();
            let mut cmd = redis::cmd("BLPOP");
            cmd.arg(&self.keys(topic).wake).arg(&seconds);
            async move { (cmd.query_async::<Popped>(&mut conn).await, topic) }.boxed()
        });
        let watchdog = timeout + WAIT_SLACK;
        let all = async move {
            let ((first, topic), _, rest) = select_all(waits).await;
            match first {
                // Woken: the rest are abandoned.
                Ok(Some(_)) => Ok((true, vec![topic])),
                Err(e) => Err((e, topic)),
                // Timed out: the others time out at about the same moment;
                // let them, so their connections can be kept.
                Ok(None) => {
                    let mut woken = false;
                    let mut keep = vec![topic];
                    for (answer, topic) in join_all(rest).await {
                        match answer {
                            Ok(popped) => {
                                woken |= popped.is_some();
                                keep.push(topic);
                            }
                            Err(e) => return Err((e, topic)),
                        }
                    }
                    if woken {
                        Ok((true, keep))
                    } else {
                        Ok((false, Vec::new()))
                    }
                }
            }
        };
        match tokio::time::timeout(watchdog, all).await {
            Ok(Ok((woken, keep))) => {
                if woken {
                    slot.conns.retain(|topic, _| keep.contains(&topic));
                }
                slot.done = true;
                Ok(woken)
            }
            Ok(Err((e, topic))) => {
                // That topic's connection is dropped with the others; the
                // next wait opens new ones (on the slot's new owner).
                tracing::debug!(error = %e, topic = %topic, "a blocking wait failed");
                Err(Error::Redis {
                    op: "wait",
                    source: e,
                })
            }
            Err(_) => Err(Error::Timeout {
                op: "wait",
                after: watchdog,
            }),
        }
    }
}
