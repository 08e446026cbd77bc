#[rmq::task]
async fn charge(order_id: u64) -> Result<(), rmq::TaskError> {
    let _ = order_id;
    Ok(())
}

async fn call(client: &rmq::Client) {
    let _ = Charge { order_id: 1 }.unique_key("k").enqueue(client).await;
    let _ = Charge { order_id: 1 }
        .delay(std::time::Duration::from_secs(1))
        .unique_key("k");
}

fn main() {
    let _ = call;
}
