//! Every form of `unique`, and the receipts of the enqueue helpers.

use std::time::Duration;

use rmq::{Enqueued, JobId, Task, TaskError, UniqueMode, UniquePolicy, DEFAULT_UNIQUE_TTL};

#[rmq::task(unique = "30m")]
async fn whole(a: u32) -> Result<(), TaskError> {
    let _ = a;
    Ok(())
}

#[rmq::task(unique(key = [user, r#type], mode = window, ttl = "1h"))]
async fn window(user: u64, r#type: String, note: String) -> Result<(), TaskError> {
    let _ = (user, r#type, note);
    Ok(())
}

#[rmq::task(unique(mode = debounce, ttl = "5s", key = index))]
async fn debounced(index: String, query: String) -> Result<(), TaskError> {
    let _ = (index, query);
    Ok(())
}

#[rmq::task(unique(mode = until_started))]
async fn started() -> Result<(), TaskError> {
    Ok(())
}

#[rmq::task]
async fn plain() -> Result<(), TaskError> {
    Ok(())
}

async fn receipts(client: &rmq::Client) -> Result<(), rmq::Error> {
    let _: Enqueued = Whole { a: 1 }.enqueue(client).await?;
    let _: Enqueued = Whole { a: 1 }.unique_key("k").enqueue(client).await?;
    let _: Enqueued = Whole { a: 1 }
        .delay(Duration::from_secs(1))
        .unique(UniqueMode::Window, Duration::from_secs(60))
        .enqueue(client)
        .await?;
    let _: JobId = Plain {}.enqueue(client).await?;
    let _: JobId = Plain {}.delay(Duration::from_secs(1)).enqueue(client).await?;
    let _: Enqueued = Plain {}.delay(Duration::from_secs(1)).submit(client).await?;
    Ok(())
}

fn main() {
    let _ = receipts;
    assert_eq!(
        Whole::descriptor().policy.unique,
        Some(UniquePolicy {
            mode: UniqueMode::UntilCompleted,
            ttl: Duration::from_secs(1800),
            fields: None,
        })
    );
    assert_eq!(
        Window::descriptor().policy.unique.and_then(|u| u.fields),
        Some(&["user", "type"][..])
    );
    assert_eq!(
        Debounced::descriptor().policy.unique.map(|u| u.mode),
        Some(UniqueMode::Debounce)
    );
    assert_eq!(
        Started::descriptor().policy.unique.map(|u| u.ttl),
        Some(DEFAULT_UNIQUE_TTL)
    );
    assert_eq!(Plain::descriptor().policy.unique, None);
}
