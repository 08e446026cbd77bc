//! The browser harness against a page served here: a button whose script
//! (loaded from /app.js) asks `confirm()` before writing "done".

use rmq_testkit::browser::Browser;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PAGE: &str = r#"<!doctype html>
<html>
<head><meta charset="utf-8"><title>harness</title></head>
<body>
<button id="go">Go</button>
<p id="out">waiting</p>
<script src="/app.js"></script>
</body>
</html>
"#;

const APP_JS: &str = r#"document.getElementById('go').addEventListener('click', function () {
  if (confirm('sure?')) document.getElementById('out').textContent = 'done';
});
"#;

/// Serves `PAGE` at `/` and `APP_JS` at `/app.js`, one request per
/// connection, until the test ends. Returns the base URL.
async fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(respond(stream));
        }
    });
    url
}

async fn respond(mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let (status, content_type, body) = match path {
        "/" => ("200 OK", "text/html; charset=utf-8", PAGE),
        "/app.js" => ("200 OK", "text/javascript; charset=utf-8", APP_JS),
        _ => ("404 Not Found", "text/plain", "not found\n"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[tokio::test]
async fn click_accept_confirm_wait_and_screenshot() {
    let Some(browser) = Browser::start().await.expect("start the browser") else {
        return;
    };
    let url = serve().await;
    browser.goto(&url).await.unwrap();
    assert_eq!(browser.text("#out").await.unwrap(), "waiting");

    browser.click("#go").await.unwrap();
    assert_eq!(browser.accept_confirm().await.unwrap(), "sure?");
    browser.wait_for_text("#out", "done").await.unwrap();
    browser.wait_for_text_gone("#out", "waiting").await.unwrap();

    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rmq-testkit-browser/confirm.png");
    let _ = std::fs::remove_file(&path);
    browser.screenshot(&path).await.unwrap();
    let png = std::fs::read(&path).expect("the screenshot file");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        path.display()
    );
}

#[tokio::test]
async fn dismissed_confirm_changes_nothing() {
    let Some(mut browser) = Browser::start().await.expect("start the browser") else {
        return;
    };
    let url = serve().await;
    browser.goto(&url).await.unwrap();
    browser.click("#go").await.unwrap();
    assert_eq!(browser.dismiss_confirm().await.unwrap(), "sure?");

    browser.set_wait_timeout(std::time::Duration::from_millis(300));
    let err = browser.wait_for_text("#out", "done").await.unwrap_err();
    assert!(err.contains("\"waiting\""), "{err}");
    let err = browser.wait_for("#missing").await.unwrap_err();
    assert!(err.contains("#missing"), "{err}");
}
