//! Generated code must not depend on what the user's module names: every
//! path it uses is fully qualified.

#![allow(dead_code, non_camel_case_types)]

mod shadowing {
    struct Result;
    struct Ok;
    struct Err;
    struct Option;
    struct Some;
    struct None;
    struct Box;
    struct String;
    struct Vec;
    struct Duration;
    struct Clone;
    struct Debug;
    struct Into;
    struct Send;
    struct Sync;
    struct Future;
    struct Pin;
    struct Task;
    struct TaskError;
    struct Client;
    struct Priority;
    struct Invocation;
    struct serde;
    struct inventory;
    mod core {}
    mod std {}

    #[rmq::task(topic = "hygiene", retries = 2, retry_delays = ["1s"], priority = Low, ttl = "1m")]
    pub async fn shadowed(
        name: ::std::string::String,
        tags: ::std::vec::Vec<u8>,
        ctx: ::rmq::JobContext,
    ) -> ::core::result::Result<(), ::rmq::TaskError> {
        let _ = (name, tags, ctx);
        ::core::result::Result::Ok(())
    }
}

fn main() {
    use rmq::Task;
    assert_eq!(shadowing::Shadowed::descriptor().topic, "hygiene");
}
