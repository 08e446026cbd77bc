//! Duration strings of the attribute: an integer and a unit, e.g. `"500ms"`,
//! `"30s"`, `"5m"`, `"1h"`, `"7d"`.

/// The accepted form, for error messages.
const FORM: &str = "expected an integer followed by one of the units `ms`, `s`, `m`, `h`, `d`, \
                    e.g. \"500ms\", \"30s\", \"5m\"";

/// Parses a duration string into milliseconds.
pub(crate) fn parse(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid duration \"{text}\": {FORM}");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(invalid());
    }
    let factor: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("duration \"{text}\" is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn accepts_every_unit() {
        assert_eq!(parse("500ms"), Ok(500));
        assert_eq!(parse("30s"), Ok(30_000));
        assert_eq!(parse("5m"), Ok(300_000));
        assert_eq!(parse("1h"), Ok(3_600_000));
        assert_eq!(parse("2d"), Ok(172_800_000));
        assert_eq!(parse("0s"), Ok(0));
    }

    #[test]
    fn rejects_other_forms() {
        for text in [
            "", "s", "10", "10 s", " 10s", "10sec", "1.5s", "-1s", "1h30m", "10S",
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains("expected an integer"), "{text}: {error}");
        }
        assert!(parse("99999999999999999999d")
            .unwrap_err()
            .contains("too large"));
    }
}
