#[rmq::event(topic = "orders")]
#[derive(Debug, Clone)]
pub struct OrderCreated {
    pub order_id: String,
}

fn main() {}
