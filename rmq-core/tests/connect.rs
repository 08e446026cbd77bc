//! What bad connection settings and bad input get: clear errors.

mod support;

use std::time::Duration;

use rmq_core::broker::check_server_version;
use rmq_core::handler::BoxFuture;
use rmq_core::{
    Broker, Client, Error, Invocation, Priority, Task, TaskDescriptor, TaskError, TaskPolicy,
};
use rmq_testkit::{free_port, Options, RedisServer};
use support::config;

#[tokio::test]
async fn malformed_url_names_the_option() {
    for url in ["redis://127.0.0.1:notaport", "redis://[::1", "redis://"] {
        let err = Broker::connect(&config(url)).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                Error::Config {
                    option: "redis_url",
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains("redis://[user:password@]host:port"), "{text}");
    }
    // Through the client, a wrong scheme is caught by validation first.
    let err = Client::connect(config("http://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("redis_url"), "{err}");
}

#[tokio::test]
async fn unreachable_redis_says_what_to_check() {
    let url = format!("redis://:secret@127.0.0.1:{}", free_port());
    let err = Broker::connect(&config(&url)).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{text}");
    assert!(text.contains("connection refused"), "{text}");
    assert!(text.contains("REDIS_URL"), "{text}");
    assert!(!text.contains("secret"), "password leaked: {text}");
    assert!(text.contains(":***@"), "{text}");
}

#[tokio::test]
async fn wrong_or_missing_password_is_explained() {
    let server = RedisServer::with(Options {
        password: Some("right-one".into()),
        ..Options::default()
    });
    let port = server.port();
    let wrong = format!("redis://:wrong-one@127.0.0.1:{port}");
    let err = Broker::connect(&config(&wrong)).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Rejected { .. }), "{text}");
    assert!(text.contains("password was rejected"), "{text}");
    assert!(text.contains("REDIS_PASSWORD"), "{text}");
    assert!(!text.contains("wrong-one"), "password leaked: {text}");

    let err = Broker::connect(&config(&server.url())).await.unwrap_err();
    assert!(err.to_string().contains("requires a password"), "{err}");

    // The override wins over the URL.
    let mut fixed = config(&wrong);
    fixed.redis_password = Some("right-one".into());
    let broker = Broker::connect(&fixed).await.unwrap();
    broker.record_topics(&["t"]).await.unwrap();
    assert_eq!(broker.topics().await.unwrap(), ["t"]);
}

#[tokio::test]
async fn database_override_is_applied() {
    let server = RedisServer::start();
    let mut c = config(&format!("{}/1", server.url()));
    c.redis_db = Some(3);
    let broker = Broker::connect(&c).await.unwrap();
    broker.record_topics(&["t"]).await.unwrap();
    let mut raw = redis::Client::open(format!("{}/3", server.url()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("rmq:topics")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(members, ["t"]);
}

#[test]
fn version_check_with_fake_strings() {
    check_server_version("redis_version:7.0.15\r\n").unwrap();
    check_server_version("redis_version:7.0.0\r\n").unwrap();
    let err = check_server_version("redis_version:6.2.9\r\n").unwrap_err();
    assert!(matches!(&err, Error::RedisVersion { found } if found == "6.2.9"));
    let text = err.to_string();
    assert!(
        text.contains("7.0 or newer") && text.contains("upgrade"),
        "{text}"
    );
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Upload {
    data: String,
}

fn run_upload(_: Invocation) -> BoxFuture<Result<Option<Vec<u8>>, TaskError>> {
    Box::pin(async { Ok(None) })
}

fn encode_upload(json: &str) -> Result<Vec<u8>, String> {
    rmq_core::codec::encode_json::<Upload>(json)
}

static UPLOAD: TaskDescriptor = TaskDescriptor {
    topic: "uploads",
    function: "upload",
    module_path: "connect",
    payload_type: "Upload",
    fields: &[("data", "String")],
    policy: TaskPolicy {
        retries: Some(1),
        backoff: None,
        priority: Priority::High,
        timeout: None,
        ttl: None,
        ..TaskPolicy::DEFAULT
    },
    handler: run_upload,
    state: &[],
    encode_json: encode_upload,
};

impl Task for Upload {
    type Receipt = rmq_core::JobId;
    type Output = ();

    fn descriptor() -> &'static TaskDescriptor {
        &UPLOAD
    }
}

#[tokio::test]
async fn client_refuses_payloads_over_the_limit_and_enqueues_the_rest() {
    let server = RedisServer::start();
    let mut c = config(&server.url());
    c.max_payload_bytes = 1000;
    let client = Client::connect(c).await.unwrap();
    let err = client
        .enqueue(Upload {
            data: "x".repeat(2000),
        })
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::PayloadTooLarge { limit: 1000, .. }),
        "{text}"
    );
    assert!(text.contains("max_payload_bytes"), "{text}");
    let id = client
        .enqueue(Upload {
            data: "small".into(),
        })
        .await
        .unwrap();
    let broker = client.broker().unwrap();
    let jobs = broker
        .fetch("uploads", 10, Duration::from_secs(30))
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id(), id.as_str());
    assert_eq!(jobs[0].priority(), Priority::High);
    assert_eq!(jobs[0].max_retries(), 1);
    let back: Upload = rmq_core::codec::decode(jobs[0].payload()).unwrap();
    assert_eq!(back.data, "small");
    // Explicit ids through the client: duplicates are refused.
    let job = rmq_core::Enqueue::new(Upload { data: "a".into() }).job_id("u-1");
    job.clone().enqueue(&client).await.unwrap();
    let err = job.enqueue(&client).await.unwrap_err();
    assert!(matches!(err, Error::DuplicateJobId { .. }), "{err}");
}

#[tokio::test]
async fn redis_down_mid_run_gives_a_clear_error_then_recovers() {
    let mut server = RedisServer::start();
    let broker = Broker::connect(&config(&server.url())).await.unwrap();
    server.kill();
    let err = broker
        .fetch("t", 1, Duration::from_secs(1))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Redis { .. } | Error::Pool { .. }),
        "{text}"
    );
    server.restart();
    let mut ok = false;
    for _ in 0..100 {
        if broker.fetch("t", 1, Duration::from_secs(1)).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok);
}
