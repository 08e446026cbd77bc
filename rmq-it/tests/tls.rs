//! TLS against a real TLS redis-server with certificates made at run time:
//! a private CA, host name verification, mutual TLS, the insecure opt-in,
//! and errors that stop at once and say what to change.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{cli_env, eventually, Probe, Worker};
use rmq::broker::{EnqueueSpec, NewJob};
use rmq::{Broker, Config, Error, Priority};
use rmq_testkit::pki::{CertFiles, Pki};
use rmq_testkit::{AuthClients, Options, RedisServer, Tls};

/// A TLS server presenting a certificate of `pki` for `hosts`.
fn tls_server(pki: &Pki, hosts: &[&str], auth: AuthClients) -> RedisServer {
    let cert = pki.server("redis", hosts);
    RedisServer::with(Options {
        tls: Some(Tls::new(pki, &cert, auth)),
        ..Options::default()
    })
}

fn config(url: &str, ca: Option<&Path>) -> Config {
    let mut config = Config::default();
    config.redis_url = url.to_owned();
    config.connection_pool_size = 2;
    config.tls_ca_file = ca.map(Path::to_owned);
    config
}

fn with_client_cert(mut config: Config, cert: &CertFiles) -> Config {
    config.tls_cert_file = Some(cert.cert.clone());
    config.tls_key_file = Some(cert.key.clone());
    config
}

fn spec() -> EnqueueSpec {
    EnqueueSpec {
        priority: Priority::Normal,
        delay: Duration::ZERO,
        ttl: None,
        max_retries: 0,
        index: false,
    }
}

/// Enqueues, fetches and acks one job, and checks that a blocking wait (on
/// its own connection) is woken by an enqueue.
async fn round_trip(broker: &Broker, topic: &str) {
    let ids = broker
        .enqueue(
            topic,
            &spec(),
            &[NewJob {
                payload: b"\x01",
                id: None,
            }],
        )
        .await
        .expect("enqueue over TLS");
    assert_eq!(ids.len(), 1);
    let fetched = broker
        .fetch(topic, 10, Duration::from_secs(30))
        .await
        .expect("fetch over TLS");
    assert_eq!(fetched.jobs.len(), 1);
    let lost = broker
        .ack(topic, &fetched.jobs, &[Duration::from_millis(1)])
        .await
        .expect("ack over TLS");
    assert!(lost.is_empty(), "the lease was ours: {lost:?}");

    let waiter = broker.clone();
    let topics = vec![topic.to_owned()];
    let wait = tokio::spawn(async move { waiter.wait(&topics, Duration::from_secs(10)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    broker
        .enqueue(
            topic,
            &spec(),
            &[NewJob {
                payload: b"\x02",
                id: None,
            }],
        )
        .await
        .expect("enqueue over TLS");
    let woken = tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("the blocking wait answers")
        .expect("join")
        .expect("blocking wait over TLS");
    assert!(woken, "the wait saw the job");
}

/// Connecting fails, fast, with an error that is not retried.
async fn connect_fails(config: &Config) -> Error {
    let started = Instant::now();
    let err = Broker::connect(config)
        .await
        .expect_err("the connection must be refused");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed only after {:?}: {err}",
        started.elapsed()
    );
    assert!(!err.is_transient(), "must not be retried: {err:?}");
    err
}

#[tokio::test]
async fn a_private_ca_connects_and_a_worker_runs_jobs() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["localhost", "127.0.0.1"], AuthClients::No);
    let url = server.tls_url();
    let broker = Broker::connect(&config(&url, Some(pki.ca_file())))
        .await
        .expect("connect with the private CA");
    round_trip(&broker, "tls").await;

    // The CLI and a real worker process, over TLS; the task records over
    // the plain port.
    let ca = pki.ca_file().to_str().expect("utf-8 path").to_owned();
    let env = [
        ("REDIS_TLS_CA_FILE", ca.as_str()),
        ("RMQ_IT_RECORD_URL", &server.url()),
    ];
    let out = cli_env(&url, &["enqueue", "record", r#"{"seq": 7}"#], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe = Probe::new(server.url());
    let _worker = Worker::run(&url, &["--topics", "record"], &env);
    eventually(
        "the job to run over TLS",
        Duration::from_secs(15),
        || async { (probe.ran("record").await.get(&7) == Some(&1)).then_some(()) },
    )
    .await;
    let out = cli_env(&url, &["stats", "--json"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn an_untrusted_server_certificate_stops_at_once_naming_the_problem() {
    let pki = Pki::new();
    let other = Pki::new();
    let server = tls_server(&pki, &["localhost", "127.0.0.1"], AuthClients::No);
    let url = server.tls_url();

    let err = connect_fails(&config(&url, Some(other.ca_file()))).await;
    let text = err.to_string();
    assert!(matches!(err, Error::Tls { .. }), "{text}");
    assert!(text.contains("not signed by a trusted CA"), "{text}");
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("tls_ca_file"), "says what to set: {text}");

    // Without tls_ca_file only the public roots are trusted.
    let err = connect_fails(&config(&url, None)).await;
    assert!(err.to_string().contains("public web PKI roots"), "{err}");

    // The worker stops with exit code 2 instead of retrying.
    let ca = other.ca_file().to_str().expect("utf-8 path").to_owned();
    let started = Instant::now();
    let out = cli_env(&url, &["run"], &[("REDIS_TLS_CA_FILE", ca.as_str())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{stderr}");
}

#[tokio::test]
async fn a_certificate_for_another_host_name_is_refused() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["localhost"], AuthClients::No);
    let port = server.tls_port().expect("tls port");

    let by_ip = format!("rediss://127.0.0.1:{port}");
    let err = connect_fails(&config(&by_ip, Some(pki.ca_file()))).await;
    let text = err.to_string();
    assert!(matches!(err, Error::Tls { .. }), "{text}");
    assert!(text.contains("not valid for the host name"), "{text}");

    // The name the certificate lists works.
    let by_name = format!("rediss://localhost:{port}");
    let broker = Broker::connect(&config(&by_name, Some(pki.ca_file())))
        .await
        .expect("connect by the certificate's name");
    round_trip(&broker, "tls").await;
}

#[tokio::test]
async fn mutual_tls_needs_a_client_certificate_of_the_servers_ca() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["127.0.0.1"], AuthClients::Yes);
    let url = server.tls_url();
    let base = config(&url, Some(pki.ca_file()));

    let broker = Broker::connect(&with_client_cert(base.clone(), &pki.client("worker")))
        .await
        .expect("connect with a client certificate");
    round_trip(&broker, "tls").await;

    let err = connect_fails(&base).await;
    let text = err.to_string();
    assert!(matches!(err, Error::Tls { .. }), "{text}");
    assert!(text.contains("client certificate"), "{text}");
    assert!(text.contains("tls_cert_file"), "says what to set: {text}");

    let stranger = Pki::new();
    let err = connect_fails(&with_client_cert(base, &stranger.client("stranger"))).await;
    let text = err.to_string();
    assert!(matches!(err, Error::Tls { .. }), "{text}");
    assert!(text.contains("refused the client certificate"), "{text}");
}

#[tokio::test]
async fn the_insecure_opt_in_connects_despite_an_untrusted_certificate_and_warns() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["localhost"], AuthClients::No);
    let url = server.tls_url();

    let broker = Broker::connect(&config(&format!("{url}/#insecure"), None))
        .await
        .expect("connect with #insecure");
    round_trip(&broker, "fragment").await;

    let mut insecure = config(&url, None);
    insecure.tls_insecure = true;
    let broker = Broker::connect(&insecure)
        .await
        .expect("connect with tls_insecure");
    round_trip(&broker, "tls").await;

    let out = cli_env(&url, &["stats"], &[("REDIS_TLS_INSECURE", "true")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("TLS certificate checks are off"),
        "{stderr}"
    );
}

#[tokio::test]
async fn tls_settings_errors_name_the_option() {
    let pki = Pki::new();
    let server = tls_server(&pki, &["127.0.0.1"], AuthClients::No);
    let url = server.tls_url();
    let option_of = |err: &Error| match err {
        Error::Config { option, .. } => *option,
        other => panic!("not a configuration error: {other}"),
    };

    let missing = pki.dir().join("missing.pem");
    let err = connect_fails(&config(&url, Some(&missing))).await;
    assert_eq!(option_of(&err), "tls_ca_file", "{err}");
    assert!(
        err.to_string().contains("missing.pem"),
        "names the path: {err}"
    );

    let garbage = pki.dir().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let err = connect_fails(&config(&url, Some(&garbage))).await;
    assert_eq!(option_of(&err), "tls_ca_file", "{err}");
    assert!(
        err.to_string().contains("no `-----BEGIN CERTIFICATE"),
        "{err}"
    );

    let client = pki.client("worker");
    let mut half = config(&url, Some(pki.ca_file()));
    half.tls_cert_file = Some(client.cert.clone());
    let err = half.validate().expect_err("a certificate without its key");
    assert_eq!(option_of(&err), "tls_key_file", "{err}");
    let mut half = config(&url, Some(pki.ca_file()));
    half.tls_key_file = Some(client.key.clone());
    let err = half.validate().expect_err("a key without its certificate");
    assert_eq!(option_of(&err), "tls_cert_file", "{err}");

    let mut wrong_key = with_client_cert(config(&url, Some(pki.ca_file())), &client);
    wrong_key.tls_key_file = Some(client.cert.clone());
    let err = connect_fails(&wrong_key).await;
    assert_eq!(option_of(&err), "tls_key_file", "{err}");

    let err = config(&server.url(), Some(pki.ca_file()))
        .validate()
        .expect_err("a CA file for a plain URL");
    assert_eq!(option_of(&err), "tls_ca_file", "{err}");
    assert!(err.to_string().contains("rediss://"), "{err}");

    // `rediss://` to the plain port: Redis waits for a command line that
    // never comes, which looks like an unreachable host (and is retried),
    // so the message names the likely cause.
    let plain_port = format!("rediss://127.0.0.1:{}", server.port());
    let err = Broker::connect(&config(&plain_port, Some(pki.ca_file())))
        .await
        .expect_err("no TLS on the plain port");
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.to_string().contains("plain port"), "{err}");
}
