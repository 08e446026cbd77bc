#[rmq::task(keep_result = "0s")]
async fn summarize(text: String) -> Result<usize, rmq::TaskError> {
    Ok(text.len())
}

fn main() {}
