//! The `#[rmq::task]` attribute. Use it through the `rmq` crate, where it is
//! documented.

use proc_macro::TokenStream;

/// Turns an async function into an rmq task. Documented on `rmq::task`.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    let _ = args;
    item
}
