//! Link-time registration: tasks of another crate reach the global registry.
//!
//! `inventory` collects registrations from every crate *linked into the
//! binary*. A task crate that the final binary never names may be dropped by
//! the linker, and its tasks vanish silently. Name such a crate once, as done
//! here: `use my_tasks as _;`.

use std::time::Duration;

use rmq::{Backoff, Error, Priority, Registry, Task, TaskDescriptor};
use rmq_fixture_tasks as _;

#[rmq::task(topic = "registry.local")]
async fn local_task(n: u32) -> Result<(), rmq::TaskError> {
    let _ = n;
    Ok(())
}

#[test]
fn tasks_of_a_linked_crate_are_registered() {
    let registry = Registry::global().expect("no duplicate topics");

    let emails = registry.get("fixture.emails").expect("fixture.emails");
    assert_eq!(emails.function, "send_welcome");
    assert_eq!(emails.module_path, "rmq_fixture_tasks");
    assert_eq!(emails.payload_type, "SendWelcome");
    assert_eq!(emails.policy.retries, Some(4));
    assert_eq!(emails.policy.priority, Priority::High);
    assert_eq!(emails.policy.timeout, Some(Duration::from_secs(10)));

    let index = registry.get("fixture.index").expect("fixture.index");
    assert_eq!(index.function, "rebuild_index");
    assert_eq!(index.fields, &[("shard", "u32"), ("full", "bool")]);
    assert_eq!(index.policy.retries, Some(1));
    assert_eq!(index.policy.priority, Priority::Low);
    assert_eq!(index.policy.ttl, Some(Duration::from_secs(86_400)));
    assert!(
        matches!(index.policy.backoff, Some(Backoff::Fixed(d)) if d == [Duration::from_secs(60)])
    );

    assert!(registry.get("registry.local").is_some());
    assert!(std::ptr::eq(
        registry.get("registry.local").unwrap(),
        LocalTask::descriptor()
    ));
}

#[test]
fn tasks_are_listed_sorted_by_topic() {
    let registry = Registry::global().expect("no duplicate topics");
    let topics: Vec<_> = registry.topics().collect();
    assert_eq!(
        topics,
        [
            "fixture.bonus",
            "fixture.emails",
            "fixture.index",
            "registry.local"
        ]
    );
    let listed: Vec<_> = registry.tasks().map(|t| t.topic).collect();
    assert_eq!(listed, topics);
    assert_eq!(registry.len(), 4);
}

#[test]
fn a_topic_claimed_twice_names_both_functions() {
    static OTHER: TaskDescriptor = TaskDescriptor {
        topic: "registry.local",
        function: "impostor",
        module_path: "elsewhere",
        ..*LOCAL_SHAPE
    };
    // The remaining fields of a descriptor, borrowed from a real task.
    const LOCAL_SHAPE: &TaskDescriptor = &TaskDescriptor {
        topic: "",
        function: "",
        module_path: "",
        payload_type: "LocalTask",
        fields: &[],
        policy: rmq::TaskPolicy::DEFAULT,
        handler: |_| Box::pin(async { Ok(None) }),
        state: &[],
        encode_json: |_| Ok(Vec::new()),
    };

    let error = Registry::from_descriptors([LocalTask::descriptor(), &OTHER]).unwrap_err();
    match &error {
        Error::DuplicateTopic {
            topic,
            first,
            second,
        } => {
            assert_eq!(topic, "registry.local");
            assert_eq!(first, "elsewhere::impostor");
            assert_eq!(second, "registry::local_task");
        }
        other => panic!("expected DuplicateTopic, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains("elsewhere::impostor"), "{message}");
    assert!(message.contains("registry::local_task"), "{message}");
}
