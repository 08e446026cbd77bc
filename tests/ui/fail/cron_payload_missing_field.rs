#[rmq::task(cron = "0 0 6 * * *", cron_payload = r#"{"region": "eu"}"#)]
async fn export(region: String, limit: u32) -> Result<(), rmq::TaskError> {
    let _ = (region, limit);
    Ok(())
}

fn main() {}
