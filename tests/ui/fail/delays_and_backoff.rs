#[rmq::task(retry_delays = ["10s", "1m"], backoff = exponential(base = "1s", max = "10m"))]
async fn handle_order(order_id: String) -> Result<(), rmq::TaskError> {
    let _ = order_id;
    Ok(())
}

fn main() {}
