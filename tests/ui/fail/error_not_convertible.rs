pub struct MyError;

#[rmq::task]
async fn handle_order(order_id: String) -> Result<(), MyError> {
    let _ = order_id;
    Ok(())
}

fn main() {}
