#[rmq::task(topic = "orders", retry = 3)]
async fn handle_order(order_id: String) -> Result<(), rmq::TaskError> {
    let _ = order_id;
    Ok(())
}

fn main() {}
