#[rmq::task(topic = "mail", on = String)]
async fn mail(event: String) -> Result<(), rmq::TaskError> {
    let _ = event;
    Ok(())
}

fn main() {}
