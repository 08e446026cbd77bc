//! The flow-limit keys of the attribute.

use std::time::Duration;

use rmq::{Rate, Task, TaskError};

#[rmq::task(rate = "100/s", concurrency = 10)]
async fn call_api(url: String) -> Result<(), TaskError> {
    let _ = url;
    Ok(())
}

#[rmq::task(rate = "5/10s", rate_key = "customer_id")]
async fn per_customer(customer_id: u64, r#type: String) -> Result<(), TaskError> {
    let _ = (customer_id, r#type);
    Ok(())
}

#[rmq::task(rate = "30/min", rate_key = "type")]
async fn per_type(r#type: String) -> Result<(), TaskError> {
    let _ = r#type;
    Ok(())
}

#[rmq::task(concurrency = 1, rate_key = "tenant")]
async fn one_at_a_time(tenant: String) -> Result<(), TaskError> {
    let _ = tenant;
    Ok(())
}

fn main() {
    let policy = CallApi::descriptor().policy;
    assert_eq!(policy.rate, Some(Rate::new(100, Duration::from_secs(1))));
    assert_eq!(policy.concurrency, Some(10));
    assert_eq!(policy.rate_key, None);
    let policy = PerCustomer::descriptor().policy;
    assert_eq!(policy.rate, Some(Rate::new(5, Duration::from_secs(10))));
    assert_eq!(policy.rate_key, Some("customer_id"));
    assert_eq!(PerType::descriptor().policy.rate.map(|r| r.to_string()).as_deref(), Some("30/min"));
    assert_eq!(PerType::descriptor().policy.rate_key, Some("type"));
    assert_eq!(OneAtATime::descriptor().policy.concurrency, Some(1));
    assert!(OneAtATime::descriptor().policy.limits().keyed);
}
