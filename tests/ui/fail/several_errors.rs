#[rmq::task(topic = "a b", priority = Highest, ttl = "1y")]
fn handle_order(order_id: String) -> Option<()> {
    let _ = order_id;
    None
}

fn main() {}
