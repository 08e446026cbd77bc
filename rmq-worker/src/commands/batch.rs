//! `batch ID`: a batch's progress.

use rmq::Client;

use super::CliError;

pub(crate) async fn show(client: &Client, id: &str) -> Result<(), CliError> {
    let Some(progress) = client.batch(id).await? else {
        return Err(CliError::Input(format!(
            "no batch `{id}`: it never existed, or its record expired (a week after its last child finished); check the id and the queue prefix"
        )));
    };
    let o = &progress.outcome;
    println!("batch      {id}");
    println!("total      {}", o.total);
    println!("succeeded  {}", o.succeeded);
    println!("dead       {}", o.dead);
    println!("cancelled  {}", o.cancelled);
    println!("pending    {}", progress.pending());
    match &progress.callback {
        Some(topic) if progress.fired => println!("callback   {topic}: enqueued"),
        Some(topic) => println!("callback   {topic}: not yet (fires when no child is pending)"),
        None => println!("callback   none"),
    }
    println!("created    {}", super::timestamp(progress.created_at_ms));
    Ok(())
}
