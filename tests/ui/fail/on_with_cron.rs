#[rmq::event]
#[derive(Debug, Clone)]
pub struct Tick {
    pub n: u64,
}

#[rmq::task(topic = "ticks", on = Tick, cron = "0 * * * * *")]
async fn on_tick(event: Tick) -> Result<(), rmq::TaskError> {
    let _ = event;
    Ok(())
}

fn main() {}
