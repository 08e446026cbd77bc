struct Orders;

impl Orders {
    #[rmq::task]
    async fn handle_order(&self, order_id: String) -> Result<(), rmq::TaskError> {
        let _ = order_id;
        Ok(())
    }
}

fn main() {}
