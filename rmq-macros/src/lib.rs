//! The `#[rmq::task]` and `#[rmq::event]` attributes. Use them through the
//! `rmq` crate, where they are documented.
//!
//! This crate holds only the entry point; parsing, checks and code
//! generation live in the `task` and `event` modules.

use proc_macro::TokenStream;

mod event;
mod task;

/// Turns an async function into an rmq task. Documented on `rmq::task`.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}

/// Declares an event type, published to every task that subscribes to it.
/// Documented on `rmq::event`.
#[proc_macro_attribute]
pub fn event(args: TokenStream, item: TokenStream) -> TokenStream {
    event::expand(args.into(), item.into()).into()
}
