#[rmq::task(keep_result = "1h")]
async fn greet(name: String) -> Result<String, rmq::TaskError> {
    Ok(format!("hello {name}"))
}

async fn demo(client: &rmq::Client) {
    let job: rmq::Job<u32> = Greet { name: "a".into() }.enqueue(client).await.unwrap();
    let _ = job;
}

fn main() {
    let _ = demo;
}
