#[rmq::task(cron = "0 */5 * * * * * *")]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
