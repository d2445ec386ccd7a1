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

/// `1.5s`, `250ms`: for messages.
pub(crate) fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else if millis >= 1000 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        format!("{millis}ms")
    }
}
