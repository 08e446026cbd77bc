//! Where the dashboard is mounted: links are built from the path prefix
//! under which the request arrived, so the router works under `/` and
//! nested in another app (`Router::new().nest("/admin/rmq", ..)`).

use axum::extract::OriginalUri;
use axum::http::request::Parts;

/// The mount prefix of the request, without a trailing slash: `""` at the
/// root, `/admin/rmq` when nested there.
pub(crate) fn base_path(parts: &Parts) -> String {
    let inner = parts.uri.path();
    let Some(OriginalUri(original)) = parts.extensions.get::<OriginalUri>() else {
        return String::new();
    };
    let original = original.path();
    if inner == "/" {
        return original.trim_end_matches('/').to_owned();
    }
    original
        .strip_suffix(inner)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_owned()
}

/// `path` (absolute within the dashboard, e.g. `/topics`) under `base`.
pub(crate) fn join(base: &str, path: &str) -> String {
    if path == "/" && !base.is_empty() {
        return base.to_owned();
    }
    format!("{base}{path}")
}

/// A path segment with everything but unreserved characters
/// percent-encoded, for ids and topic names in links.
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(original: &str, inner: &str) -> Parts {
        let mut request = Request::builder().uri(inner).body(()).unwrap();
        request
            .extensions_mut()
            .insert(OriginalUri(original.parse().unwrap()));
        request.into_parts().0
    }

    #[test]
    fn finds_the_mount_prefix() {
        assert_eq!(base_path(&parts("/", "/")), "");
        assert_eq!(base_path(&parts("/topics?x=1", "/topics?x=1")), "");
        assert_eq!(base_path(&parts("/admin/rmq", "/")), "/admin/rmq");
        assert_eq!(base_path(&parts("/admin/rmq/", "/")), "/admin/rmq");
        assert_eq!(base_path(&parts("/admin/workers", "/workers")), "/admin");
        assert_eq!(join("", "/"), "/");
        assert_eq!(join("/admin", "/"), "/admin");
        assert_eq!(join("/admin", "/topics"), "/admin/topics");
        assert_eq!(segment("host-1 a/b"), "host-1%20a%2Fb");
    }
}
