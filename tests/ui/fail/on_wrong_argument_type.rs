#[rmq::event]
#[derive(Debug, Clone)]
pub struct OrderCreated {
    pub order_id: String,
}

#[rmq::task(topic = "mail", on = OrderCreated)]
async fn mail(event: u64) -> Result<(), rmq::TaskError> {
    let _ = event;
    Ok(())
}

fn main() {}
