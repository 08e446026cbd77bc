#[rmq::task(cron = "0 0 3 * * *")]
async fn report(region: String, ctx: rmq::JobContext) -> Result<(), rmq::TaskError> {
    let _ = (region, ctx);
    Ok(())
}

fn main() {}
