#[rmq::task]
async fn handle_order<T: Clone>(order: T) -> Result<(), rmq::TaskError> {
    let _ = order;
    Ok(())
}

fn main() {}
