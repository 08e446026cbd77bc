#[rmq::task(rate = "10/week")]
async fn call_api(customer_id: u64) -> Result<(), rmq::TaskError> {
    let _ = customer_id;
    Ok(())
}

fn main() {}
