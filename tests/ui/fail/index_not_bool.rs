#[rmq::task(index = "yes")]
async fn handle_order(order_id: String) -> Result<(), rmq::TaskError> {
    let _ = order_id;
    Ok(())
}

fn main() {}
