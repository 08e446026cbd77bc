//! Every key of the attribute at once.

use std::time::Duration;

use rmq::{Backoff, Priority, Task, TaskError};

#[rmq::task(
    topic = "orders.v2",
    retries = 255,
    retry_delays = ["500ms", "10s", "1m", "2h", "1d"],
    priority = High,
    timeout = "30s",
    ttl = "1h",
    payload = PlaceOrder
)]
pub async fn handle_order(order_id: String, user_id: u64, amount: f64) -> Result<(), TaskError> {
    let _ = (order_id, user_id, amount);
    Ok(())
}

#[rmq::task(
    backoff = exponential(base = "1s", max = "10m"),
    priority = Low,
    payload = "Cleanup",
    retries = 0,
    keep_result = "15m"
)]
async fn cleanup() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {
    let policy = PlaceOrder::descriptor().policy;
    assert_eq!(policy.retries, Some(255));
    assert_eq!(policy.priority, Priority::High);
    assert_eq!(policy.timeout, Some(Duration::from_secs(30)));
    assert!(matches!(policy.backoff, Some(Backoff::Fixed(delays)) if delays.len() == 5));
    assert_eq!(Cleanup::descriptor().topic, "cleanup");
    assert_eq!(
        Cleanup::descriptor().policy.keep_result,
        Some(Duration::from_secs(900))
    );
    let _ = PlaceOrder {
        order_id: String::new(),
        user_id: 1,
        amount: 2.0,
    };
}
