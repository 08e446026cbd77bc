//! Two tasks in one module do not clash.

mod jobs {
    use rmq::TaskError;

    #[rmq::task(topic = "a")]
    pub async fn first(n: u32) -> Result<(), TaskError> {
        let _ = n;
        Ok(())
    }

    #[rmq::task(topic = "b")]
    pub async fn second(n: u32) -> Result<(), TaskError> {
        let _ = n;
        Ok(())
    }
}

use rmq::Task;

fn main() {
    assert_eq!(jobs::First::descriptor().topic, "a");
    assert_eq!(jobs::Second::descriptor().topic, "b");
    let _ = jobs::First { n: 1 };
}
