#[rmq::task(cron = "*/10 * * * * *", catch_up = All)]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
