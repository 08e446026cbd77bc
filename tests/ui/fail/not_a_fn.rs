#[rmq::task]
struct HandleOrder;

fn main() {}
