//! Payloads for people: MessagePack decoded to JSON (one line cut short in
//! tables, indented in the job detail), or, when the bytes do not decode,
//! a hex dump with the reason. Every string here is text that maud
//! escapes; nothing is marked pre-escaped.

use std::fmt::Write as _;

/// Characters of JSON a table cell shows.
const PREVIEW_CHARS: usize = 120;
/// Characters of indented JSON the job detail shows (a huge payload is cut
/// there rather than sent whole to the browser).
const PRETTY_CHARS: usize = 256 * 1024;
/// Bytes of an undecodable payload the hex dump shows.
const HEX_BYTES: usize = 1024;

/// A payload as one line of JSON, cut to [`PREVIEW_CHARS`] with `…`, or
/// why it does not decode.
pub(crate) fn preview(payload: &[u8]) -> Result<String, String> {
    let json = rmq::codec::to_json(payload)?;
    let text = serde_json::to_string(&json).map_err(|e| e.to_string())?;
    Ok(cut(&text, PREVIEW_CHARS))
}

/// A payload as indented JSON (cut to [`PRETTY_CHARS`]), or why it does not
/// decode.
pub(crate) fn pretty(payload: &[u8]) -> Result<String, String> {
    let json = rmq::codec::to_json(payload)?;
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    Ok(cut(&text, PRETTY_CHARS))
}

/// `text` cut to `max` characters, with `…` when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// The first [`HEX_BYTES`] of `bytes` as lines of 16: offset, hex, and the
/// printable ASCII (`.` for the rest), like `xxd`.
pub(crate) fn hex_dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (line, chunk) in bytes.chunks(16).take(HEX_BYTES / 16).enumerate() {
        let _ = write!(out, "{:08x}  ", line * 16);
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if i == 7 {
                out.push(' ');
            }
        }
        out.push(' ');
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push('\n');
    }
    if bytes.len() > HEX_BYTES {
        let _ = writeln!(out, "… {} bytes in all", bytes.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_cut_and_dumps() {
        let payload = rmq::codec::encode(&("a".repeat(200), 1)).unwrap();
        let line = preview(&payload).unwrap();
        assert!(line.starts_with("[\"aaa"), "{line}");
        assert_eq!(line.chars().count(), PREVIEW_CHARS + 1);
        assert!(line.ends_with('…'));
        assert!(pretty(&payload).unwrap().contains("\n  1\n"));
        assert!(preview(&[0xc1]).is_err());
        assert_eq!(cut("héllo", 2), "hé…");
        let dump = hex_dump(b"<b>\x00");
        assert!(dump.starts_with("00000000  3c 62 3e 00 "), "{dump}");
        assert!(dump.trim_end().ends_with("<b>."), "{dump}");
    }
}
