//! The dashboard mounted in an app of your own, under `/admin/rmq`, next to
//! the app's own routes.
//!
//! ```sh
//! cargo run -p rmq-web --example dashboard   # then open http://127.0.0.1:9090/admin/rmq/
//! ```
//!
//! Uses `REDIS_URL` (default `redis://127.0.0.1:6379`) and the dashboard's
//! `RMQ_WEB_*` variables (auth, read-only).

use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = rmq::Client::from_env().await?;
    let options = rmq_web::Options::from_env()?;
    let addr: std::net::SocketAddr = "127.0.0.1:9090".parse()?;
    // Loopback needs no auth; any other address needs RMQ_WEB_TOKEN or
    // RMQ_WEB_USER + RMQ_WEB_PASSWORD.
    rmq_web::check_listen(addr, &options)?;
    let app = Router::new()
        .route("/", get(|| async { "the app itself" }))
        .nest("/admin/rmq", rmq_web::router(client, options));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("dashboard on http://{addr}/admin/rmq/");
    axum::serve(listener, app).await?;
    Ok(())
}
