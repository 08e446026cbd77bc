//! The `#[rmq::task]` attribute. Use it through the `rmq` crate, where it is
//! documented.
//!
//! This crate holds only the entry point; parsing, checks and code
//! generation live in the `task` module.

use proc_macro::TokenStream;

mod task;

/// Turns an async function into an rmq task. Documented on `rmq::task`.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into()).into()
}
