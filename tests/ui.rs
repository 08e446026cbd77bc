//! Compile-time behaviour of `#[rmq::task]` and `#[rmq::event]`: what must
//! compile, and the errors (with their positions) for what must not.
//!
//! Regenerate snapshots with `TRYBUILD=overwrite cargo test --test ui`, then
//! read every `.stderr`: each error must sit under the offending tokens.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
