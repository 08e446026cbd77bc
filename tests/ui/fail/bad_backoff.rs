#[rmq::task(backoff = exponential(base = "1s", limit = "10m"))]
async fn handle_order(order_id: String) -> Result<(), rmq::TaskError> {
    let _ = order_id;
    Ok(())
}

fn main() {}
