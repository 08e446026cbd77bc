//! Unit-testing handlers without Redis: call the function, record jobs with a
//! fake client, run them at once with an inline client.
//!
//! ```sh
//! cargo run --example unit_testing
//! cargo test --example unit_testing
//! ```

use std::sync::Mutex;

use rmq::{Client, State, TaskError};

/// A tiny "mailer" the handler needs: registered as shared state.
#[derive(Default)]
pub struct Outbox {
    /// Addresses mailed so far.
    pub sent: Mutex<Vec<String>>,
}

/// Sends a password-reset email; an address without `@` never works.
#[rmq::task(topic = "password_reset", retries = 2)]
async fn password_reset(email: String, outbox: State<Outbox>) -> Result<(), TaskError> {
    if !email.contains('@') {
        return Err(TaskError::permanent(format!("`{email}` is not an address")));
    }
    outbox.sent.lock().unwrap().push(email);
    Ok(())
}

/// Signs a user up and enqueues the follow-up job.
async fn sign_up(client: &Client, email: &str) -> Result<(), rmq::Error> {
    PasswordReset {
        email: email.to_owned(),
    }
    .enqueue(client)
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() {
    // 1. Code that enqueues: assert on what it enqueued, typed.
    let fake = Client::fake();
    sign_up(&fake, "ada@example.com").await.unwrap();
    let jobs = fake.enqueued::<PasswordReset>();
    println!("fake client recorded: {jobs:?}");

    // 2. The handler's behaviour, with retries and permanent errors applied.
    let inline = Client::inline().with_state(Outbox::default());
    sign_up(&inline, "ada@example.com").await.unwrap();
    sign_up(&inline, "not-an-address").await.unwrap();
    for outcome in inline.outcomes() {
        println!(
            "inline: job {} -> {:?} after {} attempt(s)",
            outcome.id, outcome.result, outcome.attempts
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sign_up_enqueues_one_reset() {
        let fake = Client::fake();
        sign_up(&fake, "ada@example.com").await.unwrap();
        let jobs = fake.enqueued::<PasswordReset>();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].email, "ada@example.com");
    }

    #[tokio::test]
    async fn bad_addresses_die_without_retries() {
        let inline = Client::inline().with_state(Outbox::default());
        sign_up(&inline, "nope").await.unwrap();
        let outcome = &inline.outcomes()[0];
        assert_eq!(outcome.attempts, 1);
        assert!(
            matches!(&outcome.result, rmq::JobOutcome::Dead(e) if e.contains("not an address"))
        );
    }

    #[tokio::test]
    async fn the_handler_is_a_plain_function() {
        let outbox = State(std::sync::Arc::new(Outbox::default()));
        password_reset("ada@example.com".into(), outbox.clone())
            .await
            .unwrap();
        assert_eq!(
            *outbox.sent.lock().unwrap(),
            vec!["ada@example.com".to_owned()]
        );
    }
}
