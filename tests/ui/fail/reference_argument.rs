#[rmq::task]
async fn handle_order(order_id: &str) -> Result<(), rmq::TaskError> {
    let _ = order_id;
    Ok(())
}

fn main() {}
