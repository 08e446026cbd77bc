//! The tracing subscriber of the worker binary (the library installs none).

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::cli::LogFormat;

/// A layer added beside the log output (e.g. an OpenTelemetry layer).
pub(crate) type ExtraLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs a subscriber writing to standard error, plus `extra`; level
/// from `RUST_LOG` (default `info`), for the log lines and `extra` alike.
pub(crate) fn init(format: LogFormat, extra: Option<ExtraLayer>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let output = match format {
        LogFormat::Pretty => output.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => output.json().boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(extra)
        .with(filter)
        .with(output)
        .try_init();
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    struct Count(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn an_extra_layer_sees_what_the_filter_lets_through() {
        let seen = Arc::new(AtomicUsize::new(0));
        init(LogFormat::Json, Some(Box::new(Count(Arc::clone(&seen)))));
        tracing::info!("seen");
        tracing::trace!("filtered out at the default level");
        assert_eq!(seen.load(Ordering::Relaxed), 1);
    }
}
