#[rmq::task]
async fn handle_order(order_id: String) -> Result<(), rmq::TaskError>
where
    String: Clone,
{
    let _ = order_id;
    Ok(())
}

fn main() {}
