//! How payloads are stored: MessagePack with field names, so fields can be
//! added with `#[serde(default)]` without breaking jobs already queued, and so
//! the CLI can turn JSON into a stored payload without the task's type.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Task;

/// Encodes a payload as stored in Redis.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(value)
}

/// Decodes a stored payload.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// Parses JSON into the payload type `T` and encodes it as stored: the check
/// behind `enqueue <topic> <json>` on the CLI.
pub fn encode_json<T: Task>(json: &str) -> Result<Vec<u8>, String> {
    let value: T = serde_json::from_str(json).map_err(|e| {
        let descriptor = T::descriptor();
        let fields: Vec<String> = descriptor
            .fields
            .iter()
            .map(|(name, ty)| format!("\"{name}\": {ty}"))
            .collect();
        format!(
            "{e}; expected a JSON object like {{{}}} (`{}`)",
            fields.join(", "),
            descriptor.payload_type
        )
    })?;
    encode(&value).map_err(|e| e.to_string())
}

/// Renders a stored payload as JSON, whatever its type (for inspection).
pub fn to_json(bytes: &[u8]) -> Result<serde_json::Value, String> {
    let value: rmpv::Value = rmp_serde::from_slice(bytes).map_err(|e| e.to_string())?;
    serde_json::to_value(&value).map_err(|e| e.to_string())
}

/// Encodes arbitrary JSON as a stored payload, for topics whose type is not
/// linked into this binary.
pub fn json_to_payload(json: &str) -> Result<Vec<u8>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    encode(&value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Order {
        order_id: String,
        user_id: u64,
        amount: f64,
    }

    #[test]
    fn round_trips_and_renders_as_json() {
        let order = Order {
            order_id: "ORD_1".into(),
            user_id: 42,
            amount: 99.99,
        };
        let bytes = encode(&order).unwrap();
        assert_eq!(decode::<Order>(&bytes).unwrap(), order);
        let json = to_json(&bytes).unwrap();
        assert_eq!(json["order_id"], "ORD_1");
        assert_eq!(json["user_id"], 42);
    }

    #[test]
    fn json_payloads_decode_into_the_typed_struct() {
        let bytes = json_to_payload(r#"{"order_id":"A","user_id":1,"amount":2.5}"#).unwrap();
        let order: Order = decode(&bytes).unwrap();
        assert_eq!(order.order_id, "A");
    }
}
