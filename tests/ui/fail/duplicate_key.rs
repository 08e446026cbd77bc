#[rmq::task(retries = 3, topic = "orders", retries = 4)]
async fn handle_order(order_id: String) -> Result<(), rmq::TaskError> {
    let _ = order_id;
    Ok(())
}

fn main() {}
