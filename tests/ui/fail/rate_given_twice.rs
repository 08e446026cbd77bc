#[rmq::task(rate = "10/s", rate = "20/s")]
async fn call_api(customer_id: u64) -> Result<(), rmq::TaskError> {
    let _ = customer_id;
    Ok(())
}

fn main() {}
