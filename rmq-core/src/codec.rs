//! How payloads are stored: MessagePack with field names, so fields can be
//! added with `#[serde(default)]` without breaking jobs already queued, and
//! any stored payload can be shown as JSON without its type.

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
}
