//! Value parsers for flags that clap cannot check on its own: log filters, KEY=VALUE pairs,
//! bootstrap servers, sizes with units, timeouts that must be above zero, and times (RFC 3339
//! or epoch milliseconds).

/// `--log-level`: level names, or `target=level` directives, comma-separated. tracing would
/// read any other word as a target's name and so log nothing at all.
pub(super) fn parse_log_filter(text: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    for directive in text.split(',').map(str::trim) {
        if !directive.contains('=') && !LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "{directive:?} is not a log level: use off, error, warn, info, debug or trace, or target=level directives (e.g. info,kafkasnap=debug)"
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(text).map_err(|err| err.to_string())?;
    Ok(text.to_string())
}

pub(super) fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.to_string()))
        }
        _ => Err("expected KEY=VALUE".to_string()),
    }
}

/// `-b` / `--against`: `HOST:PORT` (or `HOST`, port 9092), comma-separated, each optionally
/// after a listener name (`SASL_SSL://`); an IPv6 address in brackets. librdkafka would
/// accept anything and only fail, unclearly, when connecting.
pub(super) fn parse_bootstrap(text: &str) -> Result<String, String> {
    const FORM: &str =
        "give HOST:PORT, several separated by commas (e.g. kafka.messaging.svc:9092)";
    if text.trim().is_empty() {
        return Err(format!("no bootstrap servers: {FORM}"));
    }
    for server in text.split(',') {
        check_server(server.trim()).map_err(|problem| {
            format!("{server:?} is not a bootstrap server: {problem}; {FORM}")
        })?;
    }
    Ok(text.to_string())
}

fn check_server(server: &str) -> Result<(), &'static str> {
    let address = server.split_once("://").map_or(server, |(_, rest)| rest);
    if address.is_empty() {
        return Err("it is empty");
    }
    if address.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err("it holds a space or a '/'");
    }
    let (host, port) = match address.strip_prefix('[') {
        Some(bracketed) => {
            let (host, rest) = bracketed
                .split_once(']')
                .ok_or("an IPv6 address needs its closing ']'")?;
            match rest {
                "" => (host, None),
                _ => (host, Some(rest.strip_prefix(':').ok_or("text after ']'")?)),
            }
        }
        None => match address.split_once(':') {
            Some((_, rest)) if rest.contains(':') => {
                return Err("more than one ':' (write an IPv6 address as [ADDRESS]:PORT)")
            }
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        },
    };
    if host.is_empty() {
        return Err("the host is missing");
    }
    match port.map(str::parse::<u16>) {
        Some(Ok(0) | Err(_)) => Err("the port is not a number from 1 to 65535"),
        _ => Ok(()),
    }
}

/// `--pushgateway`: an http:// or https:// URL.
pub(super) fn parse_pushgateway(text: &str) -> Result<String, String> {
    kafkasnap::metrics::check_pushgateway_url(text).map_err(|err| err.to_string())?;
    Ok(text.to_string())
}

/// `--segment-bytes`: a number of bytes, alone or with a unit (KiB, MiB, GiB or K, M, G:
/// powers of 1024; KB, MB, GB: powers of 1000), between 1 KiB and 1 GiB.
pub(super) fn parse_segment_bytes(text: &str) -> Result<u64, String> {
    const MIN: u64 = 1024;
    const MAX: u64 = 1024 * 1024 * 1024;
    let bytes = parse_size(text)?;
    if !(MIN..=MAX).contains(&bytes) {
        return Err(format!(
            "{text} is {bytes} bytes; a segment holds between 1KiB and 1GiB (e.g. 16MiB)"
        ));
    }
    Ok(bytes)
}

/// A size: digits, then an optional unit (see [`parse_segment_bytes`]), case-insensitive.
fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(digits_end);
    let unknown = || {
        format!("{text:?} is not a size: give bytes, or a number with KiB, MiB, GiB (or KB, MB, GB), e.g. 16MiB")
    };
    let number: u64 = number.parse().map_err(|_| unknown())?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(unknown()),
    };
    number.checked_mul(multiplier).ok_or_else(unknown)
}

/// A timeout that must be more than zero (`0s` would fail at the first wait).
pub(super) fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err(
            "must be more than 0s: it is how long to wait before failing (e.g. 30s, 2m)"
                .to_string(),
        ),
        Ok(duration) => Ok(duration),
        Err(err) => Err(err.to_string()),
    }
}

/// RFC 3339 (`2026-11-25T14:00:00Z`, `2026-11-25T15:00:00+01:00`) or epoch milliseconds,
/// to epoch milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis);
    }
    // humantime reads only `Z`; a numeric offset is applied here.
    let (base, offset_ms) = match split_utc_offset(text) {
        Some((base, offset_ms)) => (format!("{base}Z"), offset_ms),
        None => (text.to_string(), 0),
    };
    let time = humantime::parse_rfc3339_weak(&base).map_err(|_| {
        format!("{text:?} is not a time: use RFC 3339 (2026-11-25T14:00:00Z) or epoch milliseconds")
    })?;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "times before 1970 are not supported".to_string())?;
    Ok(since.as_millis() as i64 - offset_ms)
}

/// `...T15:00:00+01:00` -> (`...T15:00:00`, 3_600_000).
fn split_utc_offset(text: &str) -> Option<(&str, i64)> {
    let split = text.len().checked_sub(6)?;
    let (base, offset) = (text.get(..split)?, text.get(split..)?);
    let sign = match offset.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset[1..].split_once(':')?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    base.contains('T')
        .then_some((base, sign * (hours * 60 + minutes) * 60_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_sizes_take_units() {
        assert_eq!(parse_segment_bytes("16777216"), Ok(16 << 20));
        assert_eq!(parse_segment_bytes("16MiB"), Ok(16 << 20));
        assert_eq!(parse_segment_bytes("16m"), Ok(16 << 20));
        assert_eq!(parse_segment_bytes("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_segment_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_segment_bytes("10MB"), Ok(10_000_000));
        assert_eq!(parse_segment_bytes("1k"), Ok(1024));
        for bad in [
            "",
            "MiB",
            "16 lemons",
            "-5",
            "1.5MiB",
            "99999999999999999999",
        ] {
            let err = parse_segment_bytes(bad).unwrap_err();
            assert!(err.contains("is not a size"), "{bad}: {err}");
        }
        for out_of_range in ["1023", "2GiB", "0"] {
            let err = parse_segment_bytes(out_of_range).unwrap_err();
            assert!(
                err.contains("between 1KiB and 1GiB"),
                "{out_of_range}: {err}"
            );
        }
    }

    #[test]
    fn times_parse_both_ways() {
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T17:43:20.5-04:30"),
            Ok(1_700_000_000_500)
        );
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn stall_timeouts_must_be_positive() {
        assert_eq!(parse_timeout("3s"), Ok(std::time::Duration::from_secs(3)));
        assert!(parse_timeout("0s").unwrap_err().contains("more than 0s"));
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn log_levels_are_names_or_directives() {
        for good in [
            "info",
            "WARN",
            "off",
            "trace",
            "info,kafkasnap=debug",
            "kafkasnap=trace",
        ] {
            assert_eq!(parse_log_filter(good), Ok(good.to_string()), "{good}");
        }
        for bad in ["banana", "", "info,banana", "kafkasnap=banana"] {
            assert!(parse_log_filter(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_log_filter("banana").unwrap_err(),
            "\"banana\" is not a log level: use off, error, warn, info, debug or trace, or target=level directives (e.g. info,kafkasnap=debug)"
        );
    }

    #[test]
    fn bootstrap_servers_are_host_and_port() {
        for good in [
            "kafka:9092",
            "kafka",
            "a:9092,b:9093",
            "a:9092, b:9093",
            "SASL_SSL://broker.example.com:9096",
            "[::1]:9092",
            "[fe80::1]",
        ] {
            assert_eq!(parse_bootstrap(good), Ok(good.to_string()), "{good}");
        }
        for (bad, problem) in [
            ("", "no bootstrap servers"),
            ("  ", "no bootstrap servers"),
            ("a:9092,", "\"\" is not a bootstrap server: it is empty"),
            ("a:b:c", "more than one ':'"),
            ("kafka:port", "the port is not a number from 1 to 65535"),
            ("kafka:0", "the port is not a number"),
            ("kafka:70000", "the port is not a number"),
            (":9092", "the host is missing"),
            ("kafka 9092", "a space"),
            ("[::1:9092", "closing ']'"),
            ("http://kafka:9092/", "a space or a '/'"),
        ] {
            let err = parse_bootstrap(bad).unwrap_err();
            assert!(err.contains(problem), "{bad:?}: {err}");
            assert!(err.contains("HOST:PORT"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn key_values_keep_equals_in_values() {
        assert_eq!(
            parse_key_value("sasl.jaas.config=a=b"),
            Ok(("sasl.jaas.config".into(), "a=b".into()))
        );
        assert!(parse_key_value("novalue").is_err());
    }
}
