//! The generated worker binary: every task linked into this binary, served by
//! the rmq CLI.
//!
//! ```sh
//! cargo run --example worker -- tasks
//! cargo run --example worker -- enqueue thumbnails '{"image_id": 7, "width": 128}'
//! cargo run --example worker -- run --concurrency 8
//! cargo run --example worker -- stats
//! ```

use rmq::{State, TaskError};

/// Shared state the worker injects into handlers (a stand-in for an HTTP
/// client or a database pool).
pub struct Storage {
    /// Where archives go.
    pub bucket: String,
}

/// Makes a thumbnail.
#[rmq::task(topic = "thumbnails", retries = 2, timeout = "1m")]
async fn make_thumbnail(image_id: u64, width: u32) -> Result<(), TaskError> {
    if width == 0 {
        return Err(TaskError::permanent("width must be positive"));
    }
    tracing::info!(image_id, width, "thumbnail made");
    Ok(())
}

/// Archives an upload into the configured bucket.
#[rmq::task(topic = "archive")]
async fn archive(path: String, storage: State<Storage>) -> Result<(), TaskError> {
    tracing::info!(path, bucket = %storage.bucket, "archived");
    Ok(())
}

fn main() -> std::process::ExitCode {
    rmq_worker::Cli::new()
        .configure(|worker| {
            worker.state(Storage {
                bucket: "uploads".into(),
            })
        })
        .main()
}
