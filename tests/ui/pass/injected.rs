//! `JobContext` and `State<T>` are injected, not payload fields.

use rmq::{JobContext, State, TaskError};

pub struct Db {
    pub url: String,
}

#[rmq::task]
async fn sync_user(ctx: JobContext, user_id: u64, db: State<Db>, full: bool) -> Result<(), TaskError> {
    let _ = (ctx.attempt, user_id, &db.url, full);
    Ok(())
}

#[rmq::task]
async fn qualified(db: rmq::State<Db>, ctx: rmq::JobContext) -> Result<(), TaskError> {
    let _ = (&db.url, ctx.id);
    Ok(())
}

fn main() {
    // Only the payload arguments are fields.
    let _ = SyncUser {
        user_id: 1,
        full: true,
    };
    let _ = Qualified {};
}
