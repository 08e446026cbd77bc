#[rmq::event]
#[derive(Debug, Clone)]
pub struct Created<T> {
    pub item: T,
}

fn main() {}
