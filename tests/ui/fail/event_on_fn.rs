#[rmq::event]
async fn order_created(order_id: String) {
    let _ = order_id;
}

fn main() {}
