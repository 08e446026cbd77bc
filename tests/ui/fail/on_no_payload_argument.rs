#[rmq::event]
#[derive(Debug, Clone)]
pub struct OrderCreated {
    pub order_id: String,
}

#[rmq::task(topic = "mail", on = OrderCreated)]
async fn mail(ctx: rmq::JobContext) -> Result<(), rmq::TaskError> {
    let _ = ctx;
    Ok(())
}

fn main() {}
