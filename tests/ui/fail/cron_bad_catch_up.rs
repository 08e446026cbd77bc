#[rmq::task(cron = "*/10 * * * * *", catch_up = Many)]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
