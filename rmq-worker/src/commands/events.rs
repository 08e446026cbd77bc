//! `events`: the event types of this binary and their subscribers.

pub(crate) fn list() {
    let events = rmq::event::events();
    if events.is_empty() {
        println!(
            "no event types are linked into this binary (declare one with #[rmq::event], subscribe with #[rmq::task(on = ...)])"
        );
        return;
    }
    println!(
        "{:<40} {:<24} {:<8} {:<8} function",
        "event", "topic", "priority", "retries"
    );
    for event in events {
        let fields = event.descriptor.map_or_else(String::new, |d| {
            let fields: Vec<String> = d
                .fields
                .iter()
                .map(|(name, ty)| format!("{name}: {ty}"))
                .collect();
            format!(" {{ {} }}", fields.join(", "))
        });
        println!("{}{fields}", event.name);
        if event.subscribers.is_empty() {
            println!("{:<40} (no subscribers: a publish enqueues nothing)", "");
        }
        for task in &event.subscribers {
            println!(
                "{:<40} {:<24} {:<8} {:<8} {}",
                "",
                task.topic,
                task.policy.priority,
                task.policy
                    .retries
                    .map_or("default".to_owned(), |r| r.to_string()),
                task.qualified_name()
            );
        }
    }
}
