#[rmq::task(cron = "0 0 3 * * *", tz = "Europe/Atlantis")]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
