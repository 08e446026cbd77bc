//! Tasks for the fault-injection tests of rmq. The `rmq-it-worker` binary
//! links them into a worker; the tests link them to enqueue typed payloads.
//!
//! Every task writes what it did to Redis, under keys outside any queue:
//! [`RAN`] gets `<topic>:<seq>` when a run completes, [`STARTED`] gets
//! `<topic>:<seq>:<attempt>` when a long run begins and [`ATTEMPTS`] gets
//! `<topic>:<seq>:<attempt>` on every run of a failing task; the chain
//! steps record every run they begin in [`CHAIN_RUNS`].

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use rmq::{BatchOutcome, JobContext, State, TaskError};

/// List of completed runs: `<topic>:<seq>`.
pub const RAN: &str = "it:ran";
/// List of started runs of `slow`: `<topic>:<seq>:<attempt>`.
pub const STARTED: &str = "it:started";
/// List of every run of the failing tasks: `<topic>:<seq>:<attempt>`.
pub const ATTEMPTS: &str = "it:attempts";
/// List of every run of the cron tasks: `<job id>|<attempt>`.
pub const CRON_RUNS: &str = "it:cron";
/// List of every run of the batch callback: `<batch id>|<succeeded>|<dead>|<cancelled>|<attempt>`.
pub const BATCHES: &str = "it:batches";
/// List of every run the chain steps began:
/// `<topic>|<job id>|<attempt>|<enqueued at, ms since the epoch>`.
pub const CHAIN_RUNS: &str = "it:chain_runs";

pub use rmq_fixture_tasks::{GrantBonus, SignedUp};

/// Writes records to the Redis named by `REDIS_URL`, over one connection
/// that is replaced when it breaks.
pub struct Recorder {
    url: String,
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Recorder {
    /// A recorder for `RMQ_IT_RECORD_URL`, else `REDIS_URL` (default
    /// `redis://127.0.0.1:6379`). The TLS tests record over the plain port
    /// while the worker uses TLS.
    pub fn from_env() -> Recorder {
        Recorder::new(
            std::env::var("RMQ_IT_RECORD_URL")
                .or_else(|_| std::env::var("REDIS_URL"))
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        )
    }

    /// A recorder for `url`.
    pub fn new(url: String) -> Recorder {
        Recorder {
            url,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn connection(&self) -> Result<MultiplexedConnection, String> {
        let mut cached = self.conn.lock().await;
        if let Some(conn) = &*cached {
            return Ok(conn.clone());
        }
        let client = redis::Client::open(self.url.as_str()).map_err(|e| e.to_string())?;
        let conn = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| "connecting timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        *cached = Some(conn.clone());
        Ok(conn)
    }

    async fn try_push(&self, key: &str, value: &str) -> Result<(), String> {
        let mut conn = self.connection().await?;
        let pushed: Result<i64, _> = redis::cmd("RPUSH")
            .arg(key)
            .arg(value)
            .query_async(&mut conn)
            .await;
        if let Err(error) = pushed {
            *self.conn.lock().await = None;
            return Err(error.to_string());
        }
        Ok(())
    }

    /// Appends `value` to the list `key`; tries a fresh connection once
    /// before failing the run (retryably).
    pub async fn push(&self, key: &str, value: String) -> Result<(), TaskError> {
        if self.try_push(key, &value).await.is_ok() {
            return Ok(());
        }
        self.try_push(key, &value)
            .await
            .map_err(|e| TaskError::retryable(format!("cannot record {value} in {key}: {e}")))
    }
}

/// Records that it ran.
#[rmq::task(retries = 5, retry_delays = ["50ms"])]
pub async fn record(seq: u64, recorder: State<Recorder>) -> Result<(), TaskError> {
    recorder.push(RAN, format!("record:{seq}")).await
}

/// Records the start of attempt `attempt` of `name` (`<name>:<attempt>`),
/// sleeps `millis`, then records that `name` ran.
async fn timed_run(
    recorder: &Recorder,
    name: &str,
    attempt: u32,
    millis: u64,
) -> Result<(), TaskError> {
    recorder.push(STARTED, format!("{name}:{attempt}")).await?;
    tokio::time::sleep(Duration::from_millis(millis)).await;
    recorder.push(RAN, name.to_owned()).await
}

/// Records its start, sleeps `millis`, then records that it ran.
#[rmq::task(retries = 3, retry_delays = ["50ms"])]
pub async fn slow(
    seq: u64,
    millis: u64,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<(), TaskError> {
    timed_run(&recorder, &format!("slow:{seq}"), ctx.attempt, millis).await
}

/// Fails (retryably) on its first `fail_times` attempts, then succeeds.
#[rmq::task(retries = 3, retry_delays = ["50ms"])]
pub async fn flaky(
    seq: u64,
    fail_times: u32,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<(), TaskError> {
    recorder
        .push(ATTEMPTS, format!("flaky:{seq}:{}", ctx.attempt))
        .await?;
    if ctx.attempt <= fail_times {
        return Err(TaskError::retryable(format!(
            "flaky failure on attempt {}",
            ctx.attempt
        )));
    }
    recorder.push(RAN, format!("flaky:{seq}")).await
}

/// Panics on every attempt.
#[rmq::task(retries = 2, retry_delays = ["50ms"])]
pub async fn panics(seq: u64, ctx: JobContext, recorder: State<Recorder>) -> Result<(), TaskError> {
    recorder
        .push(ATTEMPTS, format!("panics:{seq}:{}", ctx.attempt))
        .await?;
    panic!("handler panic on purpose (seq {seq})");
}

/// Never finishes; its timeout cancels it.
#[rmq::task(timeout = "300ms", retries = 1, retry_delays = ["50ms"])]
pub async fn hangs(seq: u64, ctx: JobContext, recorder: State<Recorder>) -> Result<(), TaskError> {
    recorder
        .push(ATTEMPTS, format!("hangs:{seq}:{}", ctx.attempt))
        .await?;
    std::future::pending::<()>().await;
    Ok(())
}

/// Fails permanently on its first attempt, although retries are allowed.
#[rmq::task(retries = 3, retry_delays = ["50ms"])]
pub async fn permanent(
    seq: u64,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<(), TaskError> {
    recorder
        .push(ATTEMPTS, format!("permanent:{seq}:{}", ctx.attempt))
        .await?;
    Err(TaskError::permanent(format!("bad input {seq}")))
}

/// A unique job per `key` (until completed): records its start, sleeps
/// `millis`, then records that it ran.
#[rmq::task(topic = "unique_slow", retries = 3, retry_delays = ["50ms"], unique(key = key, ttl = "10m"))]
pub async fn unique_slow(
    key: u64,
    millis: u64,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<(), TaskError> {
    timed_run(
        &recorder,
        &format!("unique_slow:{key}"),
        ctx.attempt,
        millis,
    )
    .await
}

/// Two at a time across every worker: records its start, sleeps `millis`,
/// then records that it ran.
#[rmq::task(concurrency = 2, retries = 3, retry_delays = ["50ms"])]
pub async fn capped(
    seq: u64,
    millis: u64,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<(), TaskError> {
    timed_run(&recorder, &format!("capped:{seq}"), ctx.attempt, millis).await
}

/// The target of run-time cron schedules (`Broker::set_schedule`): records
/// each run's job id and attempt.
#[rmq::task(retries = 3, retry_delays = ["50ms"])]
pub async fn cron_tick(ctx: JobContext, recorder: State<Recorder>) -> Result<(), TaskError> {
    recorder
        .push(CRON_RUNS, format!("{}|{}", ctx.id, ctx.attempt))
        .await
}

/// A periodic task of the attribute kind, once a year (so it never fires in
/// a test by itself): `worker cron list` shows it, `worker cron trigger`
/// runs it.
#[rmq::task(cron = "0 0 3 1 1 *", tz = "Europe/Berlin", catch_up = None)]
pub async fn yearly_report(ctx: JobContext, recorder: State<Recorder>) -> Result<(), TaskError> {
    recorder
        .push(CRON_RUNS, format!("{}|{}", ctx.id, ctx.attempt))
        .await
}

/// Squares `n`; the result is kept for an hour.
#[rmq::task(keep_result = "1h")]
pub async fn square(n: u64) -> Result<u64, TaskError> {
    Ok(n * n)
}

/// Makes the payload of the next step of a chain from `n`.
#[rmq::task]
pub async fn plan_square(n: u64) -> Result<Square, TaskError> {
    Ok(Square { n: n + 1 })
}

/// Records a run of a chain step that begins, in [`CHAIN_RUNS`].
async fn chain_run(ctx: &JobContext, recorder: &Recorder) -> Result<(), TaskError> {
    let enqueued_ms = ctx
        .enqueued_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    recorder
        .push(
            CHAIN_RUNS,
            format!("{}|{}|{}|{enqueued_ms}", ctx.topic, ctx.id, ctx.attempt),
        )
        .await
}

/// The first step of a three-step chain: records its run, then makes the
/// middle step's payload. Records `chain_first:<seq>` when it ran.
#[rmq::task(retries = 3, retry_delays = ["50ms"])]
pub async fn chain_first(
    seq: u64,
    millis: u64,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<ChainMiddle, TaskError> {
    chain_run(&ctx, &recorder).await?;
    recorder.push(RAN, format!("chain_first:{seq}")).await?;
    Ok(ChainMiddle { seq, millis })
}

/// The middle step: records its run, works `millis`, then makes the last
/// step's payload. Records `chain_middle:<seq>` when it ran.
#[rmq::task(retries = 3, retry_delays = ["50ms"])]
pub async fn chain_middle(
    seq: u64,
    millis: u64,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<ChainLast, TaskError> {
    chain_run(&ctx, &recorder).await?;
    tokio::time::sleep(Duration::from_millis(millis)).await;
    recorder.push(RAN, format!("chain_middle:{seq}")).await?;
    Ok(ChainLast {
        seq,
        squared: seq * seq,
    })
}

/// The last step: records its run and keeps `<seq>^2=<squared>` for an
/// hour. Records `chain_last:<seq>` when it ran.
#[rmq::task(retries = 3, retry_delays = ["50ms"], keep_result = "1h")]
pub async fn chain_last(
    seq: u64,
    squared: u64,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<String, TaskError> {
    chain_run(&ctx, &recorder).await?;
    recorder.push(RAN, format!("chain_last:{seq}")).await?;
    Ok(format!("{seq}^2={squared}"))
}

/// Subscriber of `SignedUp`: records `signup_mail:<user>` when it ran.
#[rmq::task(on = SignedUp, retries = 3, retry_delays = ["50ms"])]
pub async fn signup_mail(event: SignedUp, recorder: State<Recorder>) -> Result<(), TaskError> {
    recorder
        .push(RAN, format!("signup_mail:{}", event.user))
        .await
}

/// Subscriber of `SignedUp` that takes a while: records its start
/// (`signup_audit:<user>:<attempt>`), works a second, records that it ran.
#[rmq::task(on = SignedUp, retries = 3, retry_delays = ["50ms"])]
pub async fn signup_audit(
    event: SignedUp,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<(), TaskError> {
    recorder
        .push(
            STARTED,
            format!("signup_audit:{}:{}", event.user, ctx.attempt),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    recorder
        .push(RAN, format!("signup_audit:{}", event.user))
        .await
}

/// A batch child: works `millis`, then succeeds, or fails permanently when
/// `fail`.
#[rmq::task(retries = 3, retry_delays = ["50ms"])]
pub async fn batch_child(seq: u64, millis: u64, fail: bool) -> Result<(), TaskError> {
    tokio::time::sleep(Duration::from_millis(millis)).await;
    match fail {
        false => Ok(()),
        true => Err(TaskError::permanent(format!("batch child {seq} fails"))),
    }
}

/// A batch child of a second topic, like [`batch_child`].
#[rmq::task(retries = 3, retry_delays = ["50ms"])]
pub async fn batch_other(seq: u64, millis: u64, fail: bool) -> Result<(), TaskError> {
    batch_child(seq, millis, fail).await
}

/// A batch callback: records the outcome in [`BATCHES`].
#[rmq::task(on = BatchOutcome, retries = 3, retry_delays = ["50ms"])]
pub async fn batch_done(
    outcome: BatchOutcome,
    ctx: JobContext,
    recorder: State<Recorder>,
) -> Result<(), TaskError> {
    let BatchOutcome {
        id,
        succeeded,
        dead,
        cancelled,
        ..
    } = outcome;
    recorder
        .push(
            BATCHES,
            format!("{id}|{succeeded}|{dead}|{cancelled}|{}", ctx.attempt),
        )
        .await
}
