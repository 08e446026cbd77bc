//! Events and batches on the dashboard: the tasks page lists each event
//! type with its subscribers' topics; the batch page shows a real batch's
//! progress, and says when there is no such batch.

mod common;

use rmq::{Batch, BatchOutcome, TaskError};
use rmq_web::Options;

use common::{assert_csp_clean, cells, get, text, Env};

#[rmq::event]
#[derive(Debug, Clone)]
struct InvoicePaid {
    invoice: String,
    cents: u64,
}

#[rmq::task(topic = "fo-ledger", on = InvoicePaid)]
async fn ledger(event: InvoicePaid) -> Result<(), TaskError> {
    let _ = event;
    Ok(())
}

#[rmq::task(topic = "fo-mail", on = InvoicePaid)]
async fn mail(event: InvoicePaid) -> Result<(), TaskError> {
    let _ = event;
    Ok(())
}

#[rmq::task(topic = "fo-done", on = BatchOutcome)]
async fn done(outcome: BatchOutcome) -> Result<(), TaskError> {
    let _ = outcome;
    Ok(())
}

fn row<'a>(html: &'a str, marker: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let row = &html[at..];
    &row[..row.find("</tr>").unwrap()]
}

#[tokio::test]
async fn the_tasks_page_lists_events_and_their_subscribers() {
    let env = Env::new().await;
    let app = env.app(Options::new());
    let page = get(&app, "/tasks").await.ok();
    assert_csp_clean(&page, "/tasks");
    let name = format!("{}::InvoicePaid", module_path!());
    let cells = cells(row(&page, &format!("data-event=\"{name}\"")));
    assert_eq!(cells[0], name);
    assert_eq!(cells[1], "invoice: String, cents: u64");
    assert_eq!(cells[2], "fo-ledger, fo-mail");
    assert!(page.contains("href=\"/topics/fo-ledger\""), "{page}");
    let callbacks = cells_of(&page, "data-event=\"rmq::BatchOutcome\"");
    assert_eq!(callbacks[2], "fo-done");
    assert!(
        page.contains("action=\"/batches\""),
        "the batch lookup: {page}"
    );
}

fn cells_of(page: &str, marker: &str) -> Vec<String> {
    cells(row(page, marker))
}

#[tokio::test]
async fn the_batch_page_shows_progress() {
    let env = Env::new().await;
    let id = Batch::new()
        .push(Ledger {
            event: InvoicePaid {
                invoice: "i-1".into(),
                cents: 100,
            },
        })
        .push(Mail {
            event: InvoicePaid {
                invoice: "i-1".into(),
                cents: 100,
            },
        })
        .on_complete::<Done>()
        .enqueue(&env.client)
        .await
        .unwrap();
    env.broker
        .batch_jobs_ended(&[(id.child(0).as_str(), rmq::BatchEnd::Succeeded)])
        .await
        .unwrap();
    let app = env.app(Options::new());
    let page = get(&app, &format!("/batches?id={id}")).await.ok();
    assert_csp_clean(&page, "/batches");
    let table = &page[page.find("data-batch=").expect("the progress table")..];
    let line = |label: &str| {
        let at = table
            .find(&format!(">{label}</th>"))
            .unwrap_or_else(|| panic!("no {label} in {table}"));
        let rest = &table[at..];
        text(&rest[rest.find("<td").unwrap()..rest.find("</td>").unwrap()])
    };
    assert_eq!(line("Total"), "2");
    assert_eq!(line("Succeeded"), "1");
    assert_eq!(line("Pending"), "1");
    assert_eq!(line("Callback"), "fo-done: fires when no child is pending");

    let missing = get(&app, "/batches?id=nope").await.ok();
    assert!(text(&missing).contains("No batch nope"), "{missing}");
}
