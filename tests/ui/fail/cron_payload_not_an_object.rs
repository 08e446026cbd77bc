#[rmq::task(cron = "0 0 6 * * *", cron_payload = "[1, 2]")]
async fn export(region: String) -> Result<(), rmq::TaskError> {
    let _ = region;
    Ok(())
}

fn main() {}
