#[rmq::task]
async fn handle_order(order_id: String) -> Option<()> {
    let _ = order_id;
    Some(())
}

fn main() {}
