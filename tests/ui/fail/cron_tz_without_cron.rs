#[rmq::task(topic = "reports", tz = "Europe/Berlin")]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
