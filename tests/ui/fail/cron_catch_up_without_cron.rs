#[rmq::task(catch_up = One, overlap = Allow)]
async fn report() -> Result<(), rmq::TaskError> {
    Ok(())
}

fn main() {}
