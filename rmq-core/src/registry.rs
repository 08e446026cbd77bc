//! The tasks linked into this binary, collected by `inventory` and checked
//! once.
//!
//! A task crate that the final binary never names may be dropped by the
//! linker, and its tasks with it. Name such a crate once, e.g.
//! `use my_tasks as _;` in `main.rs`; the worker refuses to start with an
//! empty registry and says so.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::{Error, TaskDescriptor};

/// A link-time registration of one task; `#[rmq::task]` submits these.
#[derive(Debug)]
pub struct Registration(pub &'static TaskDescriptor);

inventory::collect!(Registration);

/// The tasks of this binary, by topic.
#[derive(Debug, Default)]
pub struct Registry {
    by_topic: BTreeMap<&'static str, &'static TaskDescriptor>,
}

impl Registry {
    /// Builds a registry from descriptors, failing on a topic claimed twice.
    pub fn from_descriptors(
        descriptors: impl IntoIterator<Item = &'static TaskDescriptor>,
    ) -> Result<Self, Error> {
        let mut by_topic = BTreeMap::new();
        for descriptor in descriptors {
            if let Some(first) = by_topic.insert(descriptor.topic, descriptor) {
                let (a, b) = ordered(first.qualified_name(), descriptor.qualified_name());
                return Err(Error::DuplicateTopic {
                    topic: descriptor.topic.to_owned(),
                    first: a,
                    second: b,
                });
            }
        }
        Ok(Registry { by_topic })
    }

    /// The registry of every task linked into this binary, built on first
    /// use; fails (every time) if two linked tasks claim one topic.
    pub fn global() -> Result<&'static Registry, Error> {
        static GLOBAL: OnceLock<Result<Registry, (String, String, String)>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                Registry::from_descriptors(inventory::iter::<Registration>().map(|r| r.0)).map_err(
                    |e| match e {
                        Error::DuplicateTopic {
                            topic,
                            first,
                            second,
                        } => (topic, first, second),
                        other => (String::new(), other.to_string(), String::new()),
                    },
                )
            })
            .as_ref()
            .map_err(|(topic, first, second)| Error::DuplicateTopic {
                topic: topic.clone(),
                first: first.clone(),
                second: second.clone(),
            })
    }

    /// The task of `topic`.
    pub fn get(&self, topic: &str) -> Option<&'static TaskDescriptor> {
        self.by_topic.get(topic).copied()
    }

    /// Every task, sorted by topic.
    pub fn tasks(&self) -> impl Iterator<Item = &'static TaskDescriptor> + '_ {
        self.by_topic.values().copied()
    }

    /// Every topic, sorted.
    pub fn topics(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_topic.keys().copied()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// Whether no task is registered.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}

fn ordered(a: String, b: String) -> (String, String) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}
