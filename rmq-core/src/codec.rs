//! How payloads are stored: MessagePack with field names, so fields can be
//! added with `#[serde(default)]` without breaking jobs already queued, and
//! any stored payload can be shown as JSON without its type.
//!
//! Decoding recurses once per nesting level, so every decode here first
//! checks that the payload nests at most [`MAX_DEPTH`] levels: a payload of a
//! few kilobytes nested thousands of levels deep is a decode error, not a
//! stack overflow of the worker.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Task;

/// Encodes a payload as stored in Redis.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    // Most payloads fit: no reallocation while the fields are written.
    let mut bytes = Vec::with_capacity(ENCODE_CAPACITY);
    value.serialize(&mut rmp_serde::Serializer::new(&mut bytes).with_struct_map())?;
    Ok(bytes)
}

/// The buffer a payload is encoded into starts this large.
const ENCODE_CAPACITY: usize = 128;

/// The deepest nesting of arrays and maps a stored payload may have: a
/// struct, a map, a sequence or an enum variant with data is one level each.
///
/// Decoding recurses once per level: in a debug build, 128 levels into a
/// `serde_json::Value` take about half a MiB of stack, and a tokio worker
/// thread has 2 MiB. 128 is also `serde_json`'s limit, which bounds the JSON
/// [`encode_json`] accepts, so whatever the CLI can enqueue decodes.
pub const MAX_DEPTH: usize = 128;

/// Decodes a stored payload.
///
/// A payload nested deeper than [`MAX_DEPTH`] levels is
/// [`DepthLimitExceeded`](rmp_serde::decode::Error::DepthLimitExceeded).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, rmp_serde::decode::Error> {
    check_depth(bytes)?;
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
///
/// A payload nested deeper than [`MAX_DEPTH`] levels is an error.
pub fn to_json(bytes: &[u8]) -> Result<serde_json::Value, String> {
    let value: rmpv::Value = decode(bytes).map_err(|e| match e {
        rmp_serde::decode::Error::DepthLimitExceeded => {
            format!("payload nests deeper than {MAX_DEPTH} levels")
        }
        e => e.to_string(),
    })?;
    serde_json::to_value(&value).map_err(|e| e.to_string())
}

/// Fails if the first MessagePack value in `bytes` nests arrays and maps
/// deeper than [`MAX_DEPTH`], without recursing.
///
/// `rmp_serde`'s own depth limit is not enough: it is 1024 by default, set
/// lower it still stops the decoder only once it has recursed that deep, and
/// it does not count the map around an enum variant, so a recursive enum
/// nests without bound. Anything else wrong with `bytes` (truncated, an
/// invalid marker) is left for the decoder to report.
pub(crate) fn check_depth(bytes: &[u8]) -> Result<(), rmp_serde::decode::Error> {
    // Values still to read in each open array or map, outermost first.
    let mut open = [0u64; MAX_DEPTH];
    let mut depth = 0;
    let mut rest = bytes;
    while let Some((&marker, tail)) = rest.split_first() {
        rest = tail;
        let Some((shape, header)) = Shape::of(marker, rest) else {
            return Ok(());
        };
        rest = &rest[header..];
        match shape {
            Shape::Scalar(len) => match rest.get(len..) {
                Some(tail) => rest = tail,
                None => return Ok(()),
            },
            Shape::Nested(items) => {
                if depth == MAX_DEPTH {
                    return Err(rmp_serde::decode::Error::DepthLimitExceeded);
                }
                if items > 0 {
                    open[depth] = items;
                    depth += 1;
                    continue;
                }
            }
        }
        // A value is complete: so is every array or map it was the last
        // value of.
        loop {
            if depth == 0 {
                return Ok(());
            }
            open[depth - 1] -= 1;
            if open[depth - 1] > 0 {
                break;
            }
            depth -= 1;
        }
    }
    Ok(())
}

/// What follows a MessagePack marker.
enum Shape {
    /// A value without nested values, of this many bytes.
    Scalar(usize),
    /// An array or a map: this many nested values (twice the entries of a
    /// map).
    Nested(u64),
}

impl Shape {
    /// The shape of the value that starts with `marker`, and how many bytes
    /// of `rest` its header takes (the length of a string, say). `None` for
    /// the reserved marker or a truncated header.
    fn of(marker: u8, rest: &[u8]) -> Option<(Shape, usize)> {
        let len = |bytes: usize| -> Option<u64> {
            let header = rest.get(..bytes)?;
            Some(header.iter().fold(0, |n, &b| n << 8 | u64::from(b)))
        };
        let scalar = |bytes: usize, extra: usize| -> Option<(Shape, usize)> {
            let n = usize::try_from(len(bytes)?).ok()?;
            Some((Shape::Scalar(n.checked_add(extra)?), bytes))
        };
        let nested = |bytes: usize, per_entry: u64| -> Option<(Shape, usize)> {
            Some((Shape::Nested(len(bytes)? * per_entry), bytes))
        };
        match marker {
            // fixint, nil, false, true
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some((Shape::Scalar(0), 0)),
            // fixmap, fixarray, fixstr
            0x80..=0x8f => Some((Shape::Nested(2 * u64::from(marker & 0x0f)), 0)),
            0x90..=0x9f => Some((Shape::Nested(u64::from(marker & 0x0f)), 0)),
            0xa0..=0xbf => Some((Shape::Scalar(usize::from(marker & 0x1f)), 0)),
            // never used
            0xc1 => None,
            // bin 8/16/32, str 8/16/32
            0xc4 | 0xd9 => scalar(1, 0),
            0xc5 | 0xda => scalar(2, 0),
            0xc6 | 0xdb => scalar(4, 0),
            // ext 8/16/32: the length, then the type byte
            0xc7 => scalar(1, 1),
            0xc8 => scalar(2, 1),
            0xc9 => scalar(4, 1),
            // float 32/64, uint and int 8/16/32/64
            0xcc | 0xd0 => Some((Shape::Scalar(1), 0)),
            0xcd | 0xd1 => Some((Shape::Scalar(2), 0)),
            0xca | 0xce | 0xd2 => Some((Shape::Scalar(4), 0)),
            0xcb | 0xcf | 0xd3 => Some((Shape::Scalar(8), 0)),
            // fixext 1/2/4/8/16: the type byte, then the data
            0xd4 => Some((Shape::Scalar(2), 0)),
            0xd5 => Some((Shape::Scalar(3), 0)),
            0xd6 => Some((Shape::Scalar(5), 0)),
            0xd7 => Some((Shape::Scalar(9), 0)),
            0xd8 => Some((Shape::Scalar(17), 0)),
            // array 16/32, map 16/32
            0xdc => nested(2, 1),
            0xdd => nested(4, 1),
            0xde => nested(2, 2),
            0xdf => nested(4, 2),
        }
    }
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

    /// Runs `f` on a thread with a small stack, which a decoder recursing
    /// once per level of a deeply nested payload overflows.
    fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(f)
            .expect("spawn a thread")
            .join()
            .expect("the thread does not panic")
    }

    /// `depth` arrays of one element, the innermost holding nil.
    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut bytes = vec![0x91; depth];
        bytes.push(0xc0);
        bytes
    }

    fn is_depth_error(error: &rmp_serde::decode::Error) -> bool {
        matches!(error, rmp_serde::decode::Error::DepthLimitExceeded)
    }

    #[test]
    fn a_deeply_nested_payload_is_a_depth_error() {
        on_small_stack(|| {
            let bytes = nested_arrays(10_000);
            let error = decode::<serde_json::Value>(&bytes).unwrap_err();
            assert!(is_depth_error(&error), "{error}");
            let error = decode::<rmpv::Value>(&bytes).unwrap_err();
            assert!(is_depth_error(&error), "{error}");
            let error = to_json(&bytes).unwrap_err();
            assert_eq!(error, "payload nests deeper than 128 levels");
        });
    }

    /// Nests through enum variants, which `rmp_serde`'s own depth limit
    /// does not count.
    #[derive(serde::Deserialize, Debug)]
    enum Filter {
        Not(Box<Filter>),
        All,
    }

    #[test]
    fn a_deeply_nested_enum_is_a_depth_error() {
        on_small_stack(|| {
            let mut bytes = Vec::new();
            for _ in 0..10_000 {
                bytes.extend_from_slice(&[0x81, 0xa3, b'N', b'o', b't']);
            }
            bytes.extend_from_slice(&[0xa3, b'A', b'l', b'l']);
            let error = decode::<Filter>(&bytes).unwrap_err();
            assert!(is_depth_error(&error), "{error}");

            let shallow = &bytes[bytes.len() - 5 * 3 - 4..];
            assert!(matches!(
                decode::<Filter>(shallow).unwrap(),
                Filter::Not(inner) if matches!(*inner, Filter::Not(_))
            ));
        });
    }

    #[test]
    fn max_depth_levels_decode_and_one_more_does_not() {
        let bytes = nested_arrays(MAX_DEPTH);
        let mut value = &decode::<serde_json::Value>(&bytes).unwrap();
        for _ in 0..MAX_DEPTH {
            value = &value[0];
        }
        assert!(value.is_null());
        assert_eq!(
            to_json(&bytes).unwrap(),
            decode::<serde_json::Value>(&bytes).unwrap()
        );
        // An empty array is a level too.
        let mut bytes = vec![0x91; MAX_DEPTH - 1];
        bytes.push(0x90);
        decode::<serde_json::Value>(&bytes).unwrap();

        let bytes = nested_arrays(MAX_DEPTH + 1);
        assert!(is_depth_error(
            &decode::<serde_json::Value>(&bytes).unwrap_err()
        ));
        assert!(to_json(&bytes).is_err());
        let mut bytes = vec![0x91; MAX_DEPTH];
        bytes.push(0x80);
        assert!(is_depth_error(
            &decode::<serde_json::Value>(&bytes).unwrap_err()
        ));
    }

    #[test]
    fn only_nesting_counts_towards_the_depth() {
        // A wide payload: many shallow values side by side.
        let wide: Vec<Vec<Option<u8>>> = vec![vec![Some(1), None]; 10_000];
        let bytes = encode(&wide).unwrap();
        assert_eq!(decode::<Vec<Vec<Option<u8>>>>(&bytes).unwrap(), wide);

        // Bytes inside strings, binaries and extensions are not markers, and
        // a map holds two values per entry.
        let mut bytes = vec![0x95];
        bytes.extend_from_slice(&[0xc4, 200]);
        bytes.extend_from_slice(&[0x91; 200]);
        bytes.extend_from_slice(&[0xd9, 3, b'a', b'b', b'c']);
        bytes.extend_from_slice(&[0xd4, 0x01, 0x91]);
        bytes.extend_from_slice(&[0xc7, 4, 0x02, 0x91, 0x91, 0x91, 0x91]);
        bytes.extend_from_slice(&[0x82, 0x01, 0x02, 0xa1, b'k', 0xcb]);
        bytes.extend_from_slice(&1.5f64.to_be_bytes());
        // Then the rest of the payload nests MAX_DEPTH - 1 levels below it.
        let mut nested = nested_arrays(MAX_DEPTH - 1);
        bytes[0] = 0x96;
        bytes.append(&mut nested);
        let value = decode::<rmpv::Value>(&bytes).unwrap();
        assert_eq!(value.as_array().map(Vec::len), Some(6));
    }

    #[test]
    fn a_truncated_or_invalid_payload_is_the_decoder_s_error() {
        for bytes in [
            &[0xdd, 0xff, 0xff, 0xff, 0xff][..],
            &[0x92, 0x91, 0x91],
            &[0xdb, 0x00],
            &[0xc1],
            &[],
        ] {
            let error = decode::<serde_json::Value>(bytes).unwrap_err();
            assert!(!is_depth_error(&error), "{bytes:?}: {error}");
        }
    }

    #[test]
    fn a_malformed_payload_error_for_a_deep_payload() {
        let context = crate::JobContext {
            id: crate::JobId::new("deep"),
            topic: "deep".to_owned(),
            attempt: 1,
            max_retries: 0,
            priority: crate::Priority::Normal,
            enqueued_at: std::time::SystemTime::UNIX_EPOCH,
            cancellation: crate::Cancellation::new(),
        };
        let invocation =
            crate::Invocation::new(nested_arrays(10_000), context, crate::StateMap::default());
        let error = on_small_stack(move || invocation.decode::<serde_json::Value>().unwrap_err());
        assert_eq!(error.kind(), crate::TaskErrorKind::Malformed);
        assert!(
            error.to_string().contains("depth limit exceeded"),
            "{error}"
        );
    }

    /// A payload type that takes any JSON.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Document(serde_json::Value);

    impl Task for Document {
        type Receipt = crate::JobId;
        type Output = ();

        fn descriptor() -> &'static crate::TaskDescriptor {
            fn handler(
                _: crate::Invocation,
            ) -> crate::handler::BoxFuture<Result<Option<Vec<u8>>, crate::TaskError>> {
                Box::pin(async { Ok(None) })
            }
            static DESCRIPTOR: crate::TaskDescriptor = crate::TaskDescriptor {
                topic: "documents",
                function: "store_document",
                module_path: module_path!(),
                payload_type: "Document",
                fields: &[("0", "serde_json::Value")],
                policy: crate::TaskPolicy::DEFAULT,
                handler,
                state: &[],
                encode_json: encode_json::<Document>,
            };
            &DESCRIPTOR
        }
    }

    #[test]
    fn encode_json_refuses_deeply_nested_json() {
        let error = on_small_stack(|| {
            let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
            encode_json::<Document>(&deep).unwrap_err()
        });
        assert!(error.contains("recursion limit exceeded"), "{error}");

        // Whatever JSON it accepts decodes.
        let depth = (1..=MAX_DEPTH + 1)
            .rev()
            .find(|depth| {
                let json = format!("{}{}", "[".repeat(*depth), "]".repeat(*depth));
                encode_json::<Document>(&json).is_ok()
            })
            .unwrap();
        let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let stored = encode_json::<Document>(&json).unwrap();
        decode::<Document>(&stored).unwrap();
    }
}
