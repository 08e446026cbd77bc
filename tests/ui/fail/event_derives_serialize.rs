#[rmq::event]
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderCreated {
    pub order_id: String,
}

fn main() {}
