#[rmq::task(rate_key = "tenant")]
async fn nightly() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
