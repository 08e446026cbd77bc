#[rmq::task(rate_key = customer_id)]
async fn call_api(customer_id: u64) -> Result<(), rmq::TaskError> {
    let _ = customer_id;
    Ok(())
}

fn main() {}
