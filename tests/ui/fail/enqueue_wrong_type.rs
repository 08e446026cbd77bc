#[rmq::task]
async fn handle_order(order_id: String, user_id: u64) -> Result<(), rmq::TaskError> {
    let _ = (order_id, user_id);
    Ok(())
}

async fn producer(client: &rmq::Client) -> Result<(), rmq::Error> {
    HandleOrder {
        order_id: "ORD_1".into(),
        user_id: "42",
    }
    .enqueue(client)
    .await?;
    Ok(())
}

fn main() {
    let _ = producer;
}
