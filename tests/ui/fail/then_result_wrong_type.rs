#[rmq::task]
async fn fetch(url: String) -> Result<String, rmq::TaskError> {
    Ok(url)
}

#[rmq::task]
async fn parse(body: String) -> Result<(), rmq::TaskError> {
    let _ = body;
    Ok(())
}

fn main() {
    // `fetch` returns a `String`, not a `Parse` payload.
    let _ = Fetch { url: "u".into() }.then_result::<Parse>();
}
