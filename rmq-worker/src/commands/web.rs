//! `web` (feature `web`): serves the dashboard of `rmq-web` with the
//! queue-wide `/metrics`, until SIGINT or SIGTERM.

use rmq_web::{check_listen, Options};

use super::{config, exporter, CliError};
use crate::cli::{Global, WebArgs};

pub(crate) async fn serve(global: &Global, args: WebArgs) -> Result<(), CliError> {
    let options = Options::from_env().map_err(CliError::Input)?;
    let read_only = options.read_only || args.read_only;
    let options = options.read_only(read_only).metrics(true);
    // Refused before connecting: nothing is served on an open address.
    check_listen(args.listen, &options).map_err(CliError::Input)?;
    let client = super::run::connect_with_retry(config(global)?).await?;
    let listener = crate::http::bind(args.listen).await?;
    let auth = match &options.auth {
        None => "none (loopback only)",
        Some(rmq_web::Auth::Token(_)) => "token",
        Some(rmq_web::Auth::Basic { .. }) => "basic",
    };
    tracing::info!(
        url = %format!("http://{}/", args.listen),
        auth,
        read_only = options.read_only,
        "serving the dashboard, and the queue-wide metrics on /metrics"
    );
    let app = rmq_web::router(client, options);
    axum::serve(listener, app)
        .with_graceful_shutdown(exporter::stop())
        .await
        .map_err(|e| CliError::Input(format!("the dashboard server failed: {e}")))?;
    tracing::info!("dashboard stopped");
    Ok(())
}
