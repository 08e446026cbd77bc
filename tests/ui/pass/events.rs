//! Events and their subscribers: a struct and an enum event, subscribers
//! with injected arguments, a batch callback, and generated code that does
//! not depend on what the user's module names.

#![allow(dead_code, non_camel_case_types)]

use rmq::{BatchOutcome, JobContext, State, TaskError};

#[rmq::event]
#[derive(Debug, Clone, PartialEq)]
pub struct OrderCreated {
    pub order_id: String,
    #[serde(default)]
    pub amount: f64,
}

#[rmq::event]
#[derive(Debug, Clone)]
pub enum Stock {
    Low { sku: String },
    Out(String),
}

#[rmq::task(topic = "mail", on = OrderCreated, retries = 5, priority = High)]
async fn mail(event: OrderCreated, ctx: JobContext, name: State<String>) -> Result<(), TaskError> {
    let _ = (event, ctx, name);
    Ok(())
}

#[rmq::task(topic = "restock", on = Stock, payload = Restock)]
async fn restock(stock: Stock) -> Result<(), TaskError> {
    let _ = stock;
    Ok(())
}

#[rmq::task(topic = "report", on = rmq::BatchOutcome)]
async fn report(outcome: BatchOutcome) -> Result<(), TaskError> {
    let _ = outcome;
    Ok(())
}

mod shadowing {
    struct Result;
    struct Ok;
    struct Option;
    struct Some;
    struct None;
    struct Box;
    struct String;
    struct Into;
    struct Event;
    struct Trigger;
    struct Subscriber;
    struct Publish;
    struct Published;
    struct Client;
    struct serde;
    struct inventory;
    mod core {}
    mod std {}

    #[rmq::event]
    #[derive(Debug, ::core::clone::Clone)]
    pub struct Shadowed {
        pub name: ::std::string::String,
    }

    #[rmq::task(topic = "shadowed", on = Shadowed)]
    pub async fn on_shadowed(event: Shadowed) -> ::core::result::Result<(), ::rmq::TaskError> {
        let _ = event;
        ::core::result::Result::Ok(())
    }
}

fn main() {
    use rmq::event::{Subscriber, Trigger};
    use rmq::Task;
    assert_eq!(Mail::descriptor().topic, "mail");
    assert!(<OrderCreated as Trigger>::NAME.ends_with("::OrderCreated"));
    let mail = Mail::from_event(OrderCreated { order_id: "o".into(), amount: 1.0 });
    assert_eq!(mail.event.order_id, "o");
    let subscribers = rmq::event::subscribers::<OrderCreated>();
    assert_eq!(subscribers.len(), 1);
    assert_eq!(rmq::event::subscribers::<Stock>()[0].topic, "restock");
    assert_eq!(rmq::event::subscribers::<BatchOutcome>()[0].topic, "report");
    let _ = rmq::Batch::new()
        .push(Restock { stock: Stock::Out("sku".into()) })
        .on_complete::<Report>();
    let _ = shadowing::OnShadowed::descriptor();
}
