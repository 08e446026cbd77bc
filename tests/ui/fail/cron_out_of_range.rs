#[rmq::task(cron = "0 61 * * *")]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
