pub struct Report {
    pub lines: u32,
}

#[rmq::task(keep_result = "1h")]
async fn build_report(day: u32) -> Result<Report, rmq::TaskError> {
    Ok(Report { lines: day })
}

fn main() {}
