// A value passed through a `macro_rules!` fragment is checked like one
// written in place, and the error lands on the caller's literal.
macro_rules! make_task {
    ($name:ident, $topic:literal) => {
        #[rmq::task(topic = $topic)]
        async fn $name(x: u32) -> Result<(), rmq::TaskError> {
            let _ = x;
            Ok(())
        }
    };
}

make_task!(handle_order, "orders {eu}");

fn main() {}
