#[rmq::task]
async fn handle_order((a, b): (u8, u8)) -> Result<(), rmq::TaskError> {
    let _ = (a, b);
    Ok(())
}

fn main() {}
