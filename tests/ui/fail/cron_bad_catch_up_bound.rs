#[rmq::task(cron = "*/10 * * * * *", catch_up = All("6 hours"))]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
