#[rmq::task(cron = "0 0 3 * * *", cron = "0 0 4 * * *")]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
