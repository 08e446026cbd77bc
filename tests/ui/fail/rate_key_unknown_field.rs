#[rmq::task(rate = "10/s", rate_key = "tenant")]
async fn call_api(customer_id: u64, ctx: rmq::JobContext) -> Result<(), rmq::TaskError> {
    let _ = (customer_id, ctx);
    Ok(())
}

fn main() {}
