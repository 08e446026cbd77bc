#[rmq::task]
async fn handle_order(order_id: String) -> Result<(), rmq::TaskError> {
    let _ = order_id;
    Ok(())
}

async fn producer(client: &rmq::Client) -> Result<(), rmq::Error> {
    HandleOrdr {
        order_id: "ORD_1".into(),
    }
    .enqueue(client)
    .await?;
    Ok(())
}

fn main() {
    let _ = producer;
}
