#[rmq::task(cron = "*/10 * * * * *", overlap = Sometimes)]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
