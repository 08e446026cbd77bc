#[rmq::task(cron = 5)]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
