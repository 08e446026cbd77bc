//! The locks page against a real Redis: every topic's held unique locks
//! with the job holding each, its mode and time left; escaped keys; the
//! navigation links it.

mod common;

use rmq::TaskError;
use rmq_web::Options;

use common::{assert_csp_clean, cells, get, Env, XSS};

#[rmq::task(topic = "lk-mail", unique(key = [user], mode = until_completed, ttl = "1h"))]
async fn mail(user: String) -> Result<(), TaskError> {
    let _ = user;
    Ok(())
}

/// The cells of the row whose `data-lock` is `key`.
fn row(html: &str, key: &str) -> Vec<String> {
    let marker = format!("<tr data-lock=\"{key}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no row {key} in {html}"));
    let row = &html[at..];
    cells(&row[..row.find("</tr>").unwrap()])
}

#[tokio::test]
async fn the_locks_page_lists_held_locks_with_their_job_mode_and_time_left() {
    let env = Env::new().await;
    let app = env.app(Options::new());
    let page = get(&app, "/locks").await.ok();
    assert!(page.contains("No unique locks held"), "{page}");
    assert!(
        page.contains("<a class=\"current\" href=\"/locks\" aria-current=\"page\">Locks</a>"),
        "{page}"
    );

    let held = Mail { user: "u1".into() }
        .unique_key("mail-u1")
        .enqueue(&env.client)
        .await
        .unwrap();
    let page = get(&app, "/locks").await.ok();
    assert_csp_clean(&page, "locks");
    let cells = row(&page, "mail-u1");
    assert_eq!(cells[0], "lk-mail", "{cells:?}");
    assert_eq!(cells[2], held.id().as_str(), "{cells:?}");
    assert_eq!(cells[3], "until_completed", "{cells:?}");
    assert!(
        cells[4].contains('m'),
        "an hour's ttl shown as a duration: {cells:?}"
    );

    // Completed (the lock released), the row is gone.
    let fetched = env.broker.fetch("lk-mail", 1, common::LEASE).await.unwrap();
    env.broker
        .ack(
            "lk-mail",
            &fetched.jobs,
            &[std::time::Duration::from_millis(1)],
        )
        .await
        .unwrap();
    let page = get(&app, "/locks").await.ok();
    assert!(!page.contains("data-lock=\"mail-u1\""), "{page}");
}

#[tokio::test]
async fn a_lock_key_is_escaped() {
    let env = Env::new().await;
    Mail { user: "u2".into() }
        .unique_key(XSS)
        .enqueue(&env.client)
        .await
        .unwrap();
    let page = get(&env.app(Options::new()), "/locks").await.ok();
    assert!(!page.contains(XSS), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
}
