#[rmq::task(keep_result = 3600)]
async fn summarize(text: String) -> Result<usize, rmq::TaskError> {
    Ok(text.len())
}

fn main() {}
