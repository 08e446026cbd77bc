//! Fan-out events through the facade: an event declared in one crate
//! (`rmq-fixture-tasks`) with subscribers there and here, published to real
//! workers on standalone Redis and on a cluster whose shards hold different
//! subscriber topics; re-publishing with an event id; the fake and inline
//! clients.

mod support;

use std::collections::HashSet;

use rmq::{Client, JobContext, JobOutcome, State, TaskError, Worker};
use rmq_fixture_tasks::{GrantBonus, SignedUp};
use rmq_testkit::Cluster;
use support::{pending, run, Deployment, Env, Probe};

/// (topic, user, job id) of every run of the subscribers here.
type Runs = Probe<(String, String, String)>;

#[rmq::task(topic = "events.mail", on = SignedUp, retries = 3)]
async fn mail_user(event: SignedUp, ctx: JobContext, runs: State<Runs>) -> Result<(), TaskError> {
    runs.record((ctx.topic, event.user, ctx.id.to_string()));
    Ok(())
}

#[rmq::task(topic = "events.crm", on = SignedUp, priority = High)]
async fn add_to_crm(event: SignedUp, ctx: JobContext, runs: State<Runs>) -> Result<(), TaskError> {
    runs.record((ctx.topic, event.user, ctx.id.to_string()));
    Ok(())
}

const TOPICS: [&str; 3] = ["events.crm", "events.mail", "fixture.bonus"];

fn worker(client: &Client, runs: &Runs) -> Worker {
    Worker::builder(client.clone())
        .task::<MailUser>()
        .task::<AddToCrm>()
        .task::<GrantBonus>()
        .state(runs.clone())
        .build()
        .unwrap()
}

/// Runs a worker until both subscribers here ran `n` times each and the
/// fixture's subscriber completed `n` jobs.
async fn run_until_delivered(env: &Env, runs: &Runs, n: usize) {
    let broker = env.broker().clone();
    let waiting = runs.clone();
    run(worker(&env.client, runs), async move {
        waiting.reached(2 * n).await;
        support::wait_for(|| {
            let broker = broker.clone();
            async move { broker.stats("fixture.bonus").await.unwrap().completed >= n as u64 }
        })
        .await;
    })
    .await;
}

async fn delivered_once_each(env: Env) {
    let runs = Runs::new();
    let published = SignedUp { user: "ada".into() }
        .event_id("signup-1")
        .publish(&env.client)
        .await
        .unwrap();
    assert_eq!(published.event_id, "signup-1");
    let topics: Vec<&str> = published.jobs.iter().map(|j| j.topic).collect();
    assert_eq!(topics, TOPICS, "one job per subscriber, in two crates");
    assert!(published
        .jobs
        .iter()
        .all(|j| j.new && j.id.as_str() == "ev:signup-1"));
    run_until_delivered(&env, &runs, 1).await;

    let mut seen = runs.records();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("events.crm".into(), "ada".into(), "ev:signup-1".into()),
            ("events.mail".into(), "ada".into(), "ev:signup-1".into()),
        ]
    );
    for topic in TOPICS {
        let stats = env.stats(topic).await;
        assert_eq!(stats.completed, 1, "{topic} ran exactly once");
        assert_eq!((pending(&stats), stats.processing, stats.dead), (0, 0, 0));
    }
}

#[tokio::test]
async fn an_event_reaches_each_of_three_subscribers_in_two_crates_once() {
    delivered_once_each(Env::new().await).await;
}

#[tokio::test]
async fn on_a_cluster_the_subscriber_topics_live_on_different_shards() {
    let cluster = tokio::task::spawn_blocking(Cluster::shared).await.unwrap();
    // Each Env has a prefix of its own, and the prefix decides the slots:
    // take one under which the three topics span at least two shards.
    let env = loop {
        let env = Env::on(Deployment::Cluster).await;
        let prefix = env.client.config().queue_prefix.clone();
        let shards: HashSet<u16> = TOPICS
            .iter()
            .map(|topic| cluster.primary_of_key(&format!("{{{prefix}:{topic}}}:high")))
            .collect();
        if shards.len() >= 2 {
            break env;
        }
    };
    delivered_once_each(env).await;
}

#[tokio::test]
async fn republishing_with_the_same_event_id_enqueues_nothing_new() {
    let env = Env::new().await;
    let first = SignedUp { user: "bob".into() }
        .event_id("signup-2")
        .publish(&env.client)
        .await
        .unwrap();
    assert_eq!(first.new_jobs(), 3);
    // As after a publish whose reply was lost: the same event id again.
    let again = SignedUp { user: "bob".into() }
        .event_id("signup-2")
        .publish(&env.client)
        .await
        .unwrap();
    assert_eq!(again.new_jobs(), 0, "{again:?}");
    assert_eq!(again.jobs.len(), 3);
    for topic in TOPICS {
        assert_eq!(pending(&env.stats(topic).await), 1, "{topic}");
    }
    // Status by id works with the subscriber job id.
    let status = env
        .client
        .status("events.mail", "ev:signup-2")
        .await
        .unwrap();
    assert!(status.is_some());

    let runs = Runs::new();
    run_until_delivered(&env, &runs, 1).await;
    assert_eq!(runs.len(), 2);
    for topic in TOPICS {
        assert_eq!(env.stats(topic).await.completed, 1, "{topic}");
    }

    // Once more after the jobs ran: the event id is on record.
    let late = SignedUp { user: "bob".into() }
        .event_id("signup-2")
        .publish(&env.client)
        .await
        .unwrap();
    assert_eq!(late.new_jobs(), 0, "{late:?}");
    for topic in TOPICS {
        assert_eq!(pending(&env.stats(topic).await), 0, "{topic}");
    }
    // The record is per event type and id: another id publishes.
    let other = SignedUp { user: "bob".into() }
        .event_id("signup-3")
        .publish(&env.client)
        .await
        .unwrap();
    assert_eq!(other.new_jobs(), 3);
}

#[tokio::test]
async fn a_generated_event_id_gives_every_subscriber_the_same_job_id() {
    let client = Client::fake();
    let published = SignedUp { user: "cy".into() }
        .publish(&client)
        .await
        .unwrap();
    assert!(!published.event_id.is_empty());
    let ids: HashSet<String> = published.jobs.iter().map(|j| j.id.to_string()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        ids.into_iter().next().unwrap(),
        format!("ev:{}", published.event_id)
    );
}

#[tokio::test]
async fn the_fake_client_records_one_job_per_subscriber() {
    let client = Client::fake();
    SignedUp { user: "dee".into() }
        .event_id("e-1")
        .publish(&client)
        .await
        .unwrap();
    assert_eq!(client.enqueued_count(), 3);
    let mail = client.enqueued_jobs::<MailUser>();
    assert_eq!(mail[0].payload.event.user, "dee");
    assert_eq!(mail[0].max_retries, 3, "the subscriber's own policy");
    assert_eq!(
        client.enqueued_jobs::<AddToCrm>()[0].priority,
        rmq::Priority::High
    );
    assert_eq!(client.enqueued::<GrantBonus>()[0].event.user, "dee");
    // The same event id again: the fake refuses duplicates too.
    let again = SignedUp { user: "dee".into() }
        .event_id("e-1")
        .publish(&client)
        .await
        .unwrap();
    assert_eq!(again.new_jobs(), 0);
    assert_eq!(client.enqueued_count(), 3);
}

#[tokio::test]
async fn the_inline_client_runs_every_subscriber() {
    let runs = Runs::new();
    let client = Client::inline().with_state(runs.clone());
    SignedUp { user: "eve".into() }
        .publish(&client)
        .await
        .unwrap();
    let outcomes = client.outcomes();
    let topics: Vec<&str> = outcomes.iter().map(|o| o.topic.as_str()).collect();
    assert_eq!(topics, TOPICS);
    assert!(outcomes.iter().all(|o| o.result == JobOutcome::Completed));
    assert_eq!(runs.len(), 2);
}
