//! TCP connect probe: up when a connection opens within the timeout.

use std::time::{Duration, Instant};

use tokio::net::TcpStream;

/// Opens (and closes) a connection to `host:port`. Returns the time it took, or why it failed.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    timeout: Duration,
) -> (Duration, Result<(), String>) {
    let started = Instant::now();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let result = match tokio::time::timeout(timeout, TcpStream::connect(&address)).await {
        Ok(Ok(stream)) => {
            drop(stream);
            Ok(())
        }
        Ok(Err(error)) => Err(describe_io_error(&address, &error)),
        Err(_) => Err(format!(
            "timed out after {} connecting to {address}",
            format_duration(timeout)
        )),
    };
    (started.elapsed(), result)
}

/// A connect error in words that say what to look at.
pub(crate) fn describe_io_error(address: &str, error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => format!("connection refused by {address}"),
        ErrorKind::ConnectionReset => format!("connection reset by {address}"),
        ErrorKind::TimedOut => format!("timed out connecting to {address}"),
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => {
            format!("{address} is unreachable: {error}")
        }
        _ if error.to_string().contains("lookup") || error.to_string().contains("resolve") => {
            format!("could not resolve {address}: {error}")
        }
        _ => format!("could not connect to {address}: {error}"),
    }
}

/// `250ms`, `1.5s`, `14d`, `1d 8h`: for messages (at most the two largest units).
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    if millis < 60_000 {
        return if millis.is_multiple_of(1000) {
            format!("{}s", millis / 1000)
        } else {
            format!("{:.1}s", duration.as_secs_f64())
        };
    }
    let seconds = duration.as_secs();
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut left = seconds;
    let mut parts = Vec::new();
    for (size, unit) in units {
        if left >= size {
            parts.push(format!("{}{unit}", left / size));
            left %= size;
        } else if !parts.is_empty() {
            parts.push(String::new());
        }
    }
    let shown: Vec<String> = parts
        .into_iter()
        .take(2)
        .filter(|p| !p.is_empty())
        .collect();
    shown.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        let cases = [
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_secs(2), "2s"),
            (Duration::from_secs(90), "1m 30s"),
            (Duration::from_secs(14 * 86_400), "14d"),
            (Duration::from_secs(86_400 + 8 * 3600 + 42 * 60), "1d 8h"),
            (Duration::from_secs(86_400 + 42 * 60), "1d"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
        }
    }
}
