#[rmq::task]
async fn handle_order(order_id: String) {
    let _ = order_id;
}

fn main() {}
