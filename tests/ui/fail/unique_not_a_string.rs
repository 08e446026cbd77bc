#[rmq::task(unique = 30)]
async fn charge(order_id: u64, amount: u32) -> Result<(), rmq::TaskError> {
    let _ = (order_id, amount);
    Ok(())
}

fn main() {}
