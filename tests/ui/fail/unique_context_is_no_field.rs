#[rmq::task(unique(key = ctx))]
async fn charge(order_id: u64, ctx: rmq::JobContext) -> Result<(), rmq::TaskError> {
    let _ = (order_id, ctx);
    Ok(())
}

fn main() {}
