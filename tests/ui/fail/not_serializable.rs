#[derive(Debug, Clone)]
pub struct Order {
    pub id: u64,
}

#[rmq::task]
async fn handle_order(order: Order, note: String) -> Result<(), rmq::TaskError> {
    let _ = (order, note);
    Ok(())
}

fn main() {}
