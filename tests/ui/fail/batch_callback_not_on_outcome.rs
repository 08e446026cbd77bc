#[rmq::task(topic = "report")]
async fn report(title: String) -> Result<(), rmq::TaskError> {
    let _ = title;
    Ok(())
}

#[rmq::task(topic = "resize")]
async fn resize(n: u32) -> Result<(), rmq::TaskError> {
    let _ = n;
    Ok(())
}

fn main() {
    let _ = rmq::Batch::new().push(Resize { n: 1 }).on_complete::<Report>();
}
