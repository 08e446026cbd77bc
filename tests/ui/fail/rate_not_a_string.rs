#[rmq::task(rate = 100)]
async fn call_api(customer_id: u64) -> Result<(), rmq::TaskError> {
    let _ = customer_id;
    Ok(())
}

fn main() {}
