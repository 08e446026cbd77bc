//! The admin binary: `rmq-worker stats`, `dlq`, ... for any rmq deployment.
//! It links no tasks, so `run` and `enqueue` need a binary of your own that
//! calls `rmq_worker::main()`.

fn main() -> std::process::ExitCode {
    rmq_worker::main()
}
