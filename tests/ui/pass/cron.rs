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

fn main() {
    assert_eq!(
        Sweep::descriptor().policy.cron,
        Some(CronPolicy {
            expression: "0 */5 * * * *",
            tz: "Europe/Berlin",
            overlap: Overlap::Skip,
            catch_up: CatchUp::One,
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
        })
    );
    assert_eq!(
        Hourly::descriptor().policy.cron.map(|c| (c.tz, c.catch_up)),
        Some(("UTC", CatchUp::None))
    );
}
