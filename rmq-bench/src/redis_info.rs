//! Figures read from the benchmark's Redis server: `INFO cpu`, `INFO memory`.

use redis::aio::MultiplexedConnection;

pub(crate) async fn connect(url: &str) -> Result<MultiplexedConnection, String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())
}

async fn info_field(conn: &mut MultiplexedConnection, section: &str, field: &str) -> f64 {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Seconds of CPU the Redis server has used (user + system).
pub(crate) async fn cpu_seconds(conn: &mut MultiplexedConnection) -> f64 {
    info_field(conn, "cpu", "used_cpu_user").await + info_field(conn, "cpu", "used_cpu_sys").await
}

/// Bytes of memory the Redis server has allocated.
pub(crate) async fn used_memory(conn: &mut MultiplexedConnection) -> f64 {
    info_field(conn, "memory", "used_memory").await
}

pub(crate) async fn flush(conn: &mut MultiplexedConnection) {
    let _: Result<(), _> = redis::cmd("FLUSHALL").query_async(conn).await;
}

/// Microseconds Redis has spent inside scripts (`INFO commandstats`,
/// `EVALSHA` and `EVAL`), the part of its CPU that excludes socket I/O.
pub(crate) async fn script_usec(conn: &mut MultiplexedConnection) -> f64 {
    let text: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| l.split(',').find_map(|f| f.strip_prefix("usec=")))
        .filter_map(|v| v.parse::<f64>().ok())
        .sum()
}
