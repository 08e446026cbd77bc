#[rmq::task(cron = "0 0 6 * * *", cron_payload = r#"{"region": "eu", "regoin": "us"}"#)]
async fn export(region: String) -> Result<(), rmq::TaskError> {
    let _ = region;
    Ok(())
}

fn main() {}
