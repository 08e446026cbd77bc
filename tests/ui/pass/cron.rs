//! Periodic tasks: every cron key, and what the attribute records.

use std::time::Duration;

use rmq::{CatchUp, CronPolicy, JobContext, Overlap, State, Task, TaskError};

/// Every five minutes, Berlin time.
#[rmq::task(cron = "0 */5 * * * *", tz = "Europe/Berlin")]
async fn sweep() -> Result<(), TaskError> {
    Ok(())
}

struct Db;

#[rmq::task(
    topic = "nightly",
    cron = "30 2 * * *",
    tz = "America/New_York",
    overlap = Allow,
    catch_up = All("6h"),
    priority = Low
)]
async fn nightly_report(ctx: JobContext, db: State<Db>) -> Result<(), TaskError> {
    let _ = (ctx, db);
    Ok(())
}

#[rmq::task(cron = "@hourly", catch_up = None, overlap = Skip)]
async fn hourly() -> Result<(), TaskError> {
    Ok(())
}

/// A const payload: every run carries `{"region": "eu"}` (`limit` is left
/// out: it is an `Option`).
#[rmq::task(cron = "0 0 6 * * MON-FRI", cron_payload = r#"{"region": "eu"}"#)]
async fn export(region: String, limit: Option<u32>) -> Result<(), TaskError> {
    let _ = (region, limit);
    Ok(())
}

fn main() {
    assert_eq!(
        Export::descriptor().policy.cron.map(|c| c.payload_json()),
        Some(r#"{"region": "eu"}"#)
    );
    assert_eq!(
        Sweep::descriptor().policy.cron,
        Some(CronPolicy {
            expression: "0 */5 * * * *",
            tz: "Europe/Berlin",
            overlap: Overlap::Skip,
            catch_up: CatchUp::One,
            payload: None,
        })
    );
    assert_eq!(
        NightlyReport::descriptor().policy.cron,
        Some(CronPolicy {
            expression: "30 2 * * *",
            tz: "America/New_York",
            overlap: Overlap::Allow,
            catch_up: CatchUp::All {
                within: Duration::from_secs(6 * 3600)
            },
            payload: None,
        })
    );
    assert_eq!(
        Hourly::descriptor().policy.cron.map(|c| (c.tz, c.catch_up)),
        Some(("UTC", CatchUp::None))
    );
}
