#[rmq::event]
#[derive(Debug, Clone)]
pub struct OrderCreated {
    pub order_id: String,
}

#[rmq::task(topic = "mail", on = OrderCreated)]
async fn mail(event: OrderCreated, template: String, ctx: rmq::JobContext) -> Result<(), rmq::TaskError> {
    let _ = (event, template, ctx);
    Ok(())
}

fn main() {}
