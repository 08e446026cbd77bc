#[rmq::task(cron_payload = r#"{"region": "eu"}"#)]
async fn export(region: String) -> Result<(), rmq::TaskError> {
    let _ = region;
    Ok(())
}

fn main() {}
