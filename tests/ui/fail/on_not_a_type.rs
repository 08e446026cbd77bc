#[rmq::task(topic = "mail", on = "OrderCreated")]
async fn mail(event: String) -> Result<(), rmq::TaskError> {
    let _ = event;
    Ok(())
}

fn main() {}
